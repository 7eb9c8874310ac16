#!/usr/bin/env python3
"""Runs the end-to-end tests: every test_* function of every tests/e2e/test_*.py.

Each test gets a fresh harness.Fixture (its own gateway, backend, ports and temp dir).
Prints "PASS name" or "FAIL name: reason" per test and ends with "N passed, N failed";
exits 1 when anything failed. Standard library only (no pytest needed).

    python3 tests/e2e/run.py --binary build/portcullis [-k SUBSTRING] [--keep]
"""

import argparse
import importlib
import os
import signal
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import harness  # noqa: E402

TEST_TIMEOUT = int(os.environ.get("E2E_TEST_TIMEOUT", "120"))


class TestTimeout(Exception):
    pass


def _alarm(signum, frame):
    raise TestTimeout("test took longer than %d s" % TEST_TIMEOUT)


def discover(pattern):
    tests = []
    for fname in sorted(os.listdir(HERE)):
        if not (fname.startswith("test_") and fname.endswith(".py")):
            continue
        module = importlib.import_module(fname[:-3])
        for name, fn in vars(module).items():  # definition order
            if name.startswith("test_") and callable(fn):
                full = "%s.%s" % (fname[:-3], name)
                if pattern is None or pattern in full:
                    tests.append((full, fn))
    return tests


def describe(exc):
    if isinstance(exc, (harness.Failure, TestTimeout)):
        where = traceback.extract_tb(exc.__traceback__)
        frames = [f for f in where if os.path.basename(f.filename).startswith("test_")]
        at = " (%s:%d)" % (os.path.basename(frames[-1].filename), frames[-1].lineno) \
            if frames else ""
        return "%s%s" % (exc, at)
    return "".join(traceback.format_exception_only(type(exc), exc)).strip() + "\n" + \
        "".join(traceback.format_tb(exc.__traceback__)[-3:]).rstrip()


def main():
    ap = argparse.ArgumentParser(description="Portcullis end-to-end tests")
    ap.add_argument("--binary", default=os.path.join(HERE, "..", "..", "build", "portcullis"))
    ap.add_argument("-k", dest="pattern", default=None, help="only tests whose name contains this")
    ap.add_argument("--keep", action="store_true", help="keep the temp dirs of failed tests")
    args = ap.parse_args()

    tests = discover(args.pattern)
    signal.signal(signal.SIGALRM, _alarm)
    passed = failed = 0
    started = time.monotonic()
    for name, fn in tests:
        t0 = time.monotonic()
        reason = None
        fx = None
        try:
            signal.alarm(TEST_TIMEOUT)
            if not os.access(args.binary, os.X_OK):
                raise harness.Failure("binary %s does not exist" % args.binary)
            fx = harness.Fixture(args.binary, keep=args.keep)
            fn(fx)
        except BaseException as e:  # noqa: B902 - a test may fail any way it likes
            if isinstance(e, KeyboardInterrupt):
                raise
            reason = describe(e)
        finally:
            signal.alarm(0)
        if fx is not None:
            try:
                signal.alarm(60)
                problems = fx.teardown(failed=reason is not None)
            except BaseException as e:
                problems = ["teardown failed: " + describe(e)]
            finally:
                signal.alarm(0)
            if problems:
                extra = "\n    ".join(p.replace("\n", "\n    ") for p in problems)
                reason = (reason + "\n    " + extra) if reason else extra
        dt = time.monotonic() - t0
        if reason is None:
            passed += 1
            print("PASS %s (%.1fs)" % (name, dt), flush=True)
        else:
            failed += 1
            print("FAIL %s: %s" % (name, reason), flush=True)
    print("e2e: %d tests in %.0fs" % (passed + failed, time.monotonic() - started))
    print("%d passed, %d failed" % (passed, failed), flush=True)
    return 1 if failed or not tests else 0


if __name__ == "__main__":
    sys.exit(main())
