"""`timex-stream service webapp`: the Dash UI behind gunicorn on TIMEX_WEBAPP_HOST:TIMEX_WEBAPP_PORT
(default 127.0.0.1:5000), calling the gateway at TIMEX_GATEWAY_URL."""

from __future__ import annotations

from typing import Any

from gunicorn.app.base import BaseApplication

from timex_stream.runtime.settings import Settings
from webapp.app import create_app


class _Gunicorn(BaseApplication):  # type: ignore[misc]  # gunicorn ships no type hints
    def __init__(self, wsgi: Any, options: dict[str, Any]) -> None:
        self.application, self.options = wsgi, options  # not `self.wsgi`: BaseApplication has a wsgi() method
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        return self.application


def main(settings: Settings) -> int:
    app = create_app(settings.gateway_url, settings.api_token)
    # Threads: every browser polls once a second and each poll waits on the gateway; 2 workers x 8 threads.
    _Gunicorn(app.server, {"bind": f"{settings.webapp_host}:{settings.webapp_port}", "workers": 2,
                           "worker_class": "gthread", "threads": 8, "timeout": 60, "graceful_timeout": 10,
                           "loglevel": settings.log_level.lower(), "accesslog": None,
                           "proc_name": "timex-webapp",
                           # No control socket in ~/.gunicorn: two webapps on one host would fight over it.
                           "control_socket_disable": True}).run()
    return 0
