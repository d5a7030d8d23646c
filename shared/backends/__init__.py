"""Backend adapters behind the ports of ``shared.ports``, and the one place that picks one."""

from __future__ import annotations

from shared.config import Settings
from shared.ports import Backend


def open_backend(settings: Settings) -> Backend:
    """The backend the settings name. boto3 is imported only when aws is asked for."""
    if settings.backend == "aws":
        from shared.backends.aws import AwsBackend

        return AwsBackend(
            region=settings.region, data_bucket=settings.bucket, log_bucket=settings.log_bucket
        )
    from shared.backends.local import LocalBackend

    return LocalBackend(
        settings.state_dir, data_bucket=settings.bucket, log_bucket=settings.log_bucket
    )
