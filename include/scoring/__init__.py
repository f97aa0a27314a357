"""Scoring: ROUGE of accuracy runs exactly as MLCommons' evaluation.py (`accuracy`, `rouge`, the NLTK data it needs in
`nltk_data`)."""
