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


SAMPLE = 64 << 10  # bytes of each sample tried first
SAMPLES = 4        # spread over the chunk
WORTH_IT = 0.9     # compressed/raw ratio below which compressing pays


def compress(name, data):
    """``(codec, bytes)``: stored raw when compressing does not pay.

    A few samples spread over the chunk are compressed first: data none of
    them shrinks (compressed or encrypted volumes, random bytes) costs the
    samples, not a pass over the whole chunk.
    """
    if name != NONE and len(data) > 4 * SAMPLES * SAMPLE and \
            not _any_sample_shrinks(name, memoryview(data)):
        return NONE, data
    if name == NONE:
        return NONE, data
    packed = _pack(name, data)
    if len(packed) >= len(data):
        return NONE, data
    return name, packed


def _any_sample_shrinks(name, view):
    step = (len(view) - SAMPLE) // (SAMPLES - 1)
    for start in range(0, len(view) - SAMPLE + 1, step):
        if len(_pack(name, view[start:start + SAMPLE])) < WORTH_IT * SAMPLE:
            return True
    return False


def _pack(name, data):
    if name == ZSTD:
        # A compressor per call: they are not thread-safe, and cheap.
        return zstandard.ZstdCompressor(level=1).compress(data)
    return zlib.compress(data, 1)


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
