"""The webapp's only way to Kafka: the gateway's HTTP API. Every call → (HTTP status, JSON document).
With a token, every call carries `Authorization: Bearer <token>`."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import requests

Answer = tuple[int, dict[str, Any]]


class GatewayClient:
    def __init__(self, base_url: str, token: str | None = None, timeout: float = 15.0,
                 session: requests.Session | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.session = session or requests.Session()
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}

    @property
    def has_token(self) -> bool:
        return bool(self._headers)

    def for_token(self, token: str | None) -> GatewayClient:
        """The same gateway (and connection pool) with another user's token; None keeps this one's."""
        if not token:
            return self
        return GatewayClient(self.base_url, token, self.timeout, self.session)

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def _call(self, method: str, path: str, **kwargs: Any) -> Answer:
        try:
            resp = self.session.request(method, self.url(path), timeout=self.timeout, headers=self._headers,
                                        **kwargs)
        except requests.RequestException as exc:
            return 503, {"error": f"the gateway at {self.base_url} is not reachable ({type(exc).__name__})",
                         "field": None}
        try:
            return resp.status_code, resp.json()
        except ValueError:
            return resp.status_code, {"error": f"the gateway answered HTTP {resp.status_code}", "field": None}

    def _post_config(self, config_text: str, csv: bytes | None, csv_name: str | None, **params: str) -> Answer:
        files: dict[str, tuple[str, bytes | str]] = {"config": ("config.json", config_text)}
        if csv is not None:
            files["csv"] = (csv_name or "data.csv", csv)
        return self._call("POST", "/api/requests", params={"origin": "webapp", **params}, files=files)

    def validate(self, config_text: str, csv: bytes | None = None, csv_name: str | None = None) -> Answer:
        return self._post_config(config_text, csv, csv_name, dry_run="1")

    def submit(self, config_text: str, csv: bytes | None = None, csv_name: str | None = None) -> Answer:
        return self._post_config(config_text, csv, csv_name)

    def request(self, rid: str) -> Answer:
        return self._call("GET", f"/api/requests/{quote(rid, safe='')}")

    def listing(self, limit: int = 20) -> Answer:
        return self._call("GET", "/api/requests", params={"limit": limit})

    def forecasts(self, rid: str, since: int | None = None) -> Answer:
        """A live request's latest revision per series; with `since`, every kept revision after it too."""
        params = {"since": since} if since is not None else {}
        return self._call("GET", f"/api/requests/{quote(rid, safe='')}/forecasts", params=params)

    def stop(self, rid: str) -> Answer:
        return self._call("DELETE", f"/api/requests/{quote(rid, safe='')}")

    def reforecast(self, rid: str) -> Answer:
        return self._call("POST", f"/api/requests/{quote(rid, safe='')}/reforecast", params={"origin": "webapp"})

    def download(self, rid: str, fmt: str) -> requests.Response:
        return self.session.get(self.url(f"/api/requests/{quote(rid, safe='')}/results.{fmt}"), timeout=self.timeout,
                                headers=self._headers)
