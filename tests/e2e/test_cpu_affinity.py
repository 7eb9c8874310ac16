"""[server] cpu_affinity: "auto" pins each worker's loop thread to one CPU of the
process's own mask; "none" (default) leaves every thread where the kernel puts it."""

import os

from harness import check


def _thread_masks(pid):
    """{tid: set of CPUs} for every thread of the process."""
    masks = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        masks[int(tid)] = os.sched_getaffinity(int(tid))
    return masks


def test_auto_pins_each_worker_to_its_cpu(fx):
    fx.start({"server": {"workers": 2, "cpu_affinity": "auto"}})
    pid = fx.gateway.pid
    allowed = sorted(os.sched_getaffinity(pid))  # the main thread keeps the process's mask
    expected = [allowed[i % len(allowed)] for i in range(2)]
    fx.wait_for(lambda: len(fx.events("worker.cpu_affinity")) >= 2, 5,
                "no worker.cpu_affinity events")
    events = sorted(fx.events("worker.cpu_affinity"), key=lambda e: e["worker"])
    check([(e["worker"], e["cpu"], e["level"]) for e in events]
          == [(0, expected[0], "info"), (1, expected[1], "info")],
          "events %r, expected CPUs %r" % (events, expected))
    masks = _thread_masks(pid)
    pinned = sorted(next(iter(m)) for m in masks.values() if len(m) == 1)
    if len(allowed) > 1:
        check(pinned == sorted(expected), "single-CPU threads %r, expected %r" % (pinned, expected))
        check(masks[pid] == set(allowed), "main thread mask %r" % masks[pid])
    else:
        check(all(m == {allowed[0]} for m in masks.values()), "masks %r" % masks)
    # the pinned gateway still relays
    d = fx.connect("none")
    d.ehlo()
    d.cmd("QUIT").expect(221)


def test_none_leaves_threads_unpinned(fx):
    fx.start()
    pid = fx.gateway.pid
    allowed = os.sched_getaffinity(pid)
    masks = _thread_masks(pid)
    check(all(m == allowed for m in masks.values()), "masks %r, process %r" % (masks, allowed))
    check(not fx.events("worker.cpu_affinity"), "unexpected pinning events")


def test_bad_value_names_the_line(fx):
    fx.write_config({"server": {"cpu_affinity": "all"}})
    p = fx.cli("check-config", "--config", fx.cfg)
    check(p.returncode == 1, "check-config exited %d" % p.returncode)
    check("cpu_affinity" in p.stderr and fx.cfg in p.stderr and '"auto"' in p.stderr,
          "error: %r" % p.stderr)
