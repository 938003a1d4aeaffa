"""Imported first in the pool's fork server: it dies with the predictor, even after a kill -9 (a fork
server otherwise lingers with its workers)."""

from timex_stream.runtime.processes import die_with_parent

die_with_parent()
