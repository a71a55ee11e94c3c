"""Text: Portuguese tokens and contractions, sentence splitting, language identification.

The bottom of the data flow; imports nothing else of ptoie.

* ``tokens``     tokenisation, contractions (``de o`` <-> ``do``), letters-and-digits keys,
                 locating a part in its sentence
* ``sentences``  the Portuguese sentence splitter (abbreviations, regnal numbers, long sentences)
* ``language``   the language of a document (py3langid, offline)
"""
