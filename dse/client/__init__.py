"""A Python client of the study service (``dse serve``), importable without torch or Ray.

::

    from dse.client import Client

    with Client("http://127.0.0.1:8000", token="my-secret") as client:   # or $DSE_SERVER, $DSE_TOKEN
        study = client.wait(client.submit("configs/quickstart.yaml").id)
        df = client.trials(study.id)          # pandas; the columns of a local trials.parquet
        front = client.pareto(study.id)

See ``docs/client.md``. Errors are in :mod:`dse.client.errors`.
"""

from dse.client.client import SERVER_ENV, TOKEN_ENV, Client
from dse.client.errors import (
    ApiError,
    AuthenticationError,
    BadRequestError,
    ClientConfigError,
    ClientError,
    FieldError,
    InvalidRequestError,
    PermissionDeniedError,
    RateLimitedError,
    RetryableError,
    ServerError,
    ServerUnreachableError,
    ServiceUnavailableError,
    StudyConflictError,
    StudyNotFoundError,
    WaitTimeoutError,
)
from dse.client.events import StudyEvent
from dse.client.study import FINISHED_STATES, Study
from dse.client.transport import RetryPolicy

__all__ = [
    "FINISHED_STATES", "SERVER_ENV", "TOKEN_ENV", "ApiError", "AuthenticationError", "BadRequestError", "Client",
    "ClientConfigError", "ClientError", "FieldError", "InvalidRequestError", "PermissionDeniedError",
    "RateLimitedError", "RetryPolicy", "RetryableError", "ServerError", "ServerUnreachableError",
    "ServiceUnavailableError", "Study", "StudyConflictError", "StudyEvent", "StudyNotFoundError",
    "WaitTimeoutError",
]
