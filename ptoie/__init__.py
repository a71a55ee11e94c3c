"""ptoie: Open Information Extraction for Portuguese with small fine-tuned LLMs.

Data flows one way: corpus -> sentences -> prompt -> extractor -> parser -> Triple -> graph.
"""

from ptoie.extract.config import ConfigError, DecodingConfig, ModelConfig
from ptoie.extract.extractor import Extractor, ModelLoadError, SentenceResult
from ptoie.extract.parser import ParseResult, parse_answer
from ptoie.triple import Triple

__all__ = ["ConfigError", "DecodingConfig", "Extractor", "ModelConfig", "ModelLoadError", "ParseResult",
           "SentenceResult", "Triple", "parse_answer"]
__version__ = "0.1.0"
