"""ptoie: Open Information Extraction for Portuguese with small fine-tuned LLMs.

Data flows one way: corpus -> sentences -> prompt -> extractor -> parser -> Triple -> sinks.
"""

from .extractor import Extractor, ModelLoadError, SentenceResult
from .parser import ParseResult, parse_answer
from .triple import Triple

__all__ = ["Extractor", "ModelLoadError", "ParseResult", "SentenceResult", "Triple", "parse_answer"]
__version__ = "0.1.0"
