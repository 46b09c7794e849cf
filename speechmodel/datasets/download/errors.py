"""The errors of a download: ``DownloadError`` and what went wrong under it."""

from speechmodel.errors import Error


class DownloadError(Error, RuntimeError):
    """Base class of every failure while downloading or installing a corpus."""


class NetworkError(DownloadError):
    """The server could not be reached (offline machine, DNS, refused, timeout)."""


class HTTPStatusError(DownloadError):
    """The server answered with an HTTP error status."""


class IncompleteDownloadError(DownloadError):
    """The connection closed before the whole file arrived; the part is kept."""


class ChecksumError(DownloadError):
    """The downloaded file does not match the published checksum or size."""


class UnsafeArchiveError(DownloadError):
    """An archive member would be written outside the target directory."""


class CorruptArchiveError(DownloadError):
    """An archive cannot be read (bad zip/tar, CRC error, truncated member)."""


class LayoutError(DownloadError):
    """The extracted files do not have the layout the loaders expect."""


class ManualDownloadRequired(DownloadError):
    """The corpus cannot be fetched automatically; the message says what to do."""
