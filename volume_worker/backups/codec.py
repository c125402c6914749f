"""How one chunk is encoded: compressed (zstd, else zlib) and checksummed (sha256)."""

import hashlib
import zlib

try:
    import zstandard
except ImportError:  # zlib is always there
    zstandard = None

ZSTD = 'zstd'
ZLIB = 'zlib'
NONE = 'none'


def best_available():
    return ZSTD if zstandard is not None else ZLIB


def check_available(name):
    if name == ZSTD and zstandard is None:
        raise ValueError('compression zstd needs the zstandard package')
    if name not in (ZSTD, ZLIB, NONE):
        raise ValueError('unknown compression %r' % name)


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def compress(name, data):
    """``(codec, bytes)``: stored raw when compressing does not pay."""
    if name == ZSTD:
        # A compressor per call: they are not thread-safe, and cheap.
        packed = zstandard.ZstdCompressor(level=1).compress(data)
    elif name == ZLIB:
        packed = zlib.compress(data, 1)
    else:
        return NONE, data
    if len(packed) >= len(data):
        return NONE, data
    return name, packed


def decompress(name, data, length):
    if name == NONE:
        return data
    if name == ZSTD:
        if zstandard is None:
            raise ValueError('this backup was compressed with zstd; install '
                             'the zstandard package to restore it')
        return zstandard.ZstdDecompressor().decompress(
            data, max_output_size=length)
    if name == ZLIB:
        return zlib.decompress(data)
    raise ValueError('unknown compression %r' % name)
