"""WAV parsing: the chunk layout of a RIFF/WAVE file (``wav_layout``), and
``open_soundfile``, which opens any file for libsndfile and reads a WAV
written to a pipe (``ffmpeg ... -f wav -``, whose size fields say
0xFFFFFFFF or 0) to its end."""

import dataclasses
import io
import os
import struct

import soundfile as sf

_STREAM_SIZES = (0, 0xFFFFFFFF)


@dataclasses.dataclass(frozen=True)
class WavLayout:
    """The chunk structure of a RIFF/WAVE file, read from its headers.

    Attributes:
        size: the file's size in bytes.
        riff_size: the RIFF size field.
        chunks: ``(id, declared size, payload offset)`` of every chunk
            header met, in order.
        end: where the last chunk (with its pad byte) ends; ``> size``
            when its size field overruns the file.
        fmt: ``(format tag, channels, sample rate, bytes per second,
            block align, bits per sample, cbSize or None)`` or None.
    """

    size: int
    riff_size: int
    chunks: tuple
    end: int
    fmt: tuple = None

    def chunk(self, chunk_id):
        """The first chunk ``chunk_id`` (bytes) as (size, offset), or None."""
        for cid, size, offset in self.chunks:
            if cid == chunk_id:
                return size, offset
        return None

    @property
    def streamed(self):
        """The size fields of a WAV written to a pipe (0xFFFFFFFF or 0):
        the data chunk runs to the end of the file."""
        data = self.chunk(b"data")
        if data is None or self.fmt is None or self.fmt[4] <= 0:
            return False
        size, offset = data
        if size == 0xFFFFFFFF:
            return True
        return size == 0 and self.riff_size in _STREAM_SIZES and self.size > offset


def wav_layout(path):
    """The ``WavLayout`` of a RIFF/WAVE file, or None for any other file.

    Reads the chunk headers only (seeks over the payloads). Never raises.
    """
    try:
        with open(os.fspath(path), "rb") as f:
            size = os.fstat(f.fileno()).st_size
            head = f.read(12)
            if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
                return None
            riff_size = struct.unpack("<I", head[4:8])[0]
            chunks, fmt, offset = [], None, 12
            while offset + 8 <= size and len(chunks) < 10000:
                f.seek(offset)
                header = f.read(8)
                chunk_id, chunk_size = header[:4], struct.unpack("<I", header[4:])[0]
                chunks.append((chunk_id, chunk_size, offset + 8))
                if chunk_id == b"fmt " and fmt is None and chunk_size >= 16:
                    body = f.read(min(chunk_size, 18))
                    if len(body) >= 16:
                        fields = struct.unpack("<HHIIHH", body[:16])
                        cb_size = struct.unpack("<H", body[16:18])[0] if len(body) >= 18 else None
                        fmt = (*fields, cb_size)
                offset += 8 + chunk_size + (chunk_size & 1)
            return WavLayout(size, riff_size, tuple(chunks), offset, fmt)
    except (OSError, struct.error):
        return None


class _PatchedFile(io.RawIOBase):
    """A read-only view of a file with some bytes replaced (the size fields
    of a streamed WAV), for libsndfile's virtual I/O."""

    def __init__(self, path, patches):
        super().__init__()
        self.name = path
        self._file = open(path, "rb")
        self._patches = tuple(patches.items())

    def readable(self):
        return True

    def seekable(self):
        return True

    def seek(self, offset, whence=io.SEEK_SET):
        return self._file.seek(offset, whence)

    def tell(self):
        return self._file.tell()

    def readinto(self, buffer):
        start = self._file.tell()
        n = self._file.readinto(buffer)
        if n:
            view = memoryview(buffer).cast("B")
            for offset, data in self._patches:
                lo, hi = max(start, offset), min(start + n, offset + len(data))
                if lo < hi:
                    view[lo - start : hi - start] = data[lo - offset : hi - offset]
        return n

    def close(self):
        try:
            self._file.close()
        finally:
            super().close()


def open_soundfile(path):
    """``soundfile.SoundFile`` of ``path``; a streamed WAV is opened with
    its size fields set to what the file holds (its data runs to the end,
    whole frames)."""
    layout = wav_layout(path)
    if layout is None or not layout.streamed:
        # As bytes: soundfile would encode a str strictly, failing on a file
        # name that is not UTF-8.
        return sf.SoundFile(os.fsencode(path))
    _, offset = layout.chunk(b"data")
    block_align = layout.fmt[4]
    data_size = min((layout.size - offset) // block_align * block_align, 0xFFFFFFFF - 64)
    data_size -= data_size % block_align
    riff_size = min(offset + data_size - 8, 0xFFFFFFFF)
    patches = {4: struct.pack("<I", riff_size), offset - 4: struct.pack("<I", data_size)}
    raw = _PatchedFile(path, patches)
    try:
        return sf.SoundFile(raw)  # raw is closed when the SoundFile goes.
    except BaseException:
        raw.close()
        raise
