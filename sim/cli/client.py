"""A small synchronous client of a running sim's /v1 API, with one-line errors."""

from __future__ import annotations

from typing import Any

import httpx

from sim.cli.base import CliError
from sim.errors import describe

__all__ = ["Api"]


class Api:
    """A small synchronous client of sim's /v1 API with one-line errors."""

    def __init__(self, url: str, token: str | None, timeout_s: float = 30.0) -> None:
        self.url = url.rstrip("/")
        headers = {"Accept": "application/json", "User-Agent": "sim-cli"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._client = httpx.Client(base_url=self.url, headers=headers, timeout=timeout_s)

    def __enter__(self) -> Api:
        return self

    def __exit__(self, *exc: object) -> None:
        self._client.close()

    def call(self, method: str, path: str, **kwargs: Any) -> tuple[int, dict[str, Any]]:
        try:
            response = self._client.request(method, path, **kwargs)
        except httpx.ConnectError as exc:
            raise CliError(
                f"cannot reach sim at {self.url} ({_reason(exc)}); is `sim serve` running?"
            ) from None
        except httpx.TimeoutException:
            raise CliError(f"sim at {self.url} did not answer in time") from None
        except httpx.HTTPError as exc:
            raise CliError(f"request to {self.url} failed: {_reason(exc)}") from None
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code >= 400:
            error = body.get("error") if isinstance(body, dict) else None
            if isinstance(error, dict) and error.get("message"):
                hint = " (set SIM_API_TOKEN or --token)" if response.status_code == 401 else ""
                raise CliError(
                    f"{error['message']}{hint} [HTTP {response.status_code} {error.get('code')}]"
                )
            raise CliError(f"{method} {path} answered HTTP {response.status_code}")
        if not isinstance(body, dict):
            raise CliError(f"{method} {path}: the answer is not a JSON object; is {self.url} sim?")
        return response.status_code, body


def _reason(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[-1] if text else describe(exc)
