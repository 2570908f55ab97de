"""A quick look at litdata shards on S3 before training depends on them.

Endpoint and credentials come from the environment as boto3 reads them (``AWS_ENDPOINT_URL``
for an S3-compatible server, ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
``AWS_DEFAULT_REGION``, ``AWS_CA_BUNDLE``, or a profile in ``~/.aws``). litdata retries an
unreachable server for minutes; this check fails in seconds, naming the URL.
"""

from __future__ import annotations

from urllib.parse import urlparse

from pconv_lightning.errors import MissingInputError


def check_shards_url(url: str, timeout: float = 5.0) -> None:
    """Raise :class:`MissingInputError` naming ``url`` when its ``index.json`` cannot be read
    (server unreachable, no credentials, no such object). Only ``s3://`` URLs are checked."""
    parsed = urlparse(url)
    if parsed.scheme != "s3":
        return
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    key = "/".join(p for p in (parsed.path.strip("/"), "index.json") if p)
    config = Config(connect_timeout=timeout, read_timeout=timeout, retries={"max_attempts": 2})
    try:
        boto3.client("s3", config=config).head_object(Bucket=parsed.netloc, Key=key)
    except (BotoCoreError, ClientError) as err:
        raise MissingInputError(
            f"cannot read the litdata shards at {url} (s3://{parsed.netloc}/{key}): {err}"
        ) from err
