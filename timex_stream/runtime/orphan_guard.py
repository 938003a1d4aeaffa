"""Imported first in a unit pool's fork server (timex_stream.runtime.pool): it dies with its service, even
after a kill -9 (a fork server otherwise lingers with its workers)."""

from timex_stream.runtime.processes import die_with_parent

die_with_parent()
