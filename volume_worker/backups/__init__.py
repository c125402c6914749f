"""The backup service: where backups of volumes are kept, and how they are read and written.

``chunked`` holds the format (fixed-size chunks, each compressed and
checksummed, incremental backups referring to their parent's unchanged
chunks); ``posix`` the store on a POSIX filesystem (``[backup]
posix_path``, an NFS mount in production). Drivers are handed a service
object and call its ``backup(backup, volume_file)`` /
``restore(backup, volume_id, volume_file)`` (see ``drivers.generic``).
"""
