"""One adapter shape for S3, GCS and Azure Blob: get / put / head / list / delete plus
compare-and-swap (put-if-absent, put-if-match). The state, cache and logs backends for
object storage are written against :class:`ObjectStore` only."""
