"""Specification of what reaches the console (`compiler_opt/console.py`); the whole binary is checked in
tests/test_bc_max.py."""

import logging
import os

import pytest

from compiler_opt import console


def test_what_c_code_writes_to_stderr_goes_to_the_log_not_the_console(capfd, caplog):
    caplog.set_level(logging.INFO)
    # Records go through absl's logger, whose level follows --verbosity once any test has parsed absl flags.
    caplog.set_level(logging.INFO, logger="absl")
    with console.stderr_to_log("the converter"):
        os.write(2, b"Summary on the non-converted ops\n")

    assert "Summary" not in capfd.readouterr().err
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.INFO, "the converter wrote to stderr:\nSummary on the non-converted ops")
    ]


def test_when_the_call_fails_its_stderr_is_logged_as_an_error(capfd, caplog):
    with pytest.raises(RuntimeError), console.stderr_to_log("the converter"):
        os.write(2, b"error: op not supported\n")
        raise RuntimeError("conversion failed")

    assert "op not supported" not in capfd.readouterr().err
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.ERROR, "the converter wrote to stderr:\nerror: op not supported")
    ]
