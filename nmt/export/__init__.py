"""Export: a trained translation checkpoint written in another inference engine's format.

run           `nmt export`: checks, loads the checkpoint, writes the directory atomically (a temp dir, then a rename)
ctranslate2   the CTranslate2 format: a `ctranslate2.converters.Converter` filling a TransformerSpec, the
              SentencePiece models beside it, and a README (needs the optional package: pip install "nmt[ct2]")
"""
