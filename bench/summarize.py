#!/usr/bin/env python3
"""Turns bench/compare.sh's results.jsonl into the comparison table (Markdown).

Each line of results.jsonl is one portcullis-bench --json report tagged with round,
scenario and server. For every metric the table shows the median over rounds and the
range, then the ratio portcullis/nginx of the medians and the issue-7 target.

Usage: summarize.py RESULTS.jsonl [ENVIRONMENT.txt]
"""

import json
import statistics
import sys

SCENARIOS = {
    "a": "STARTTLS + AUTH PLAIN, 1 KiB, 50 clients, 100 msg/conn",
    "b": "STARTTLS + AUTH PLAIN, 1 KiB, 50 clients, 1 msg/conn",
    "c": "implicit TLS, 1 MiB, 8 clients, 100 msg/conn",
    "d": "idle TLS connections (implicit, greeting read)",
    "e": "as a, rate capped at half the lower peak of a",
    "f": "as e with the proxy (1 worker) pinned to CPU 1 and bench + sink to CPU 0, "
         "rate capped at half the lower peak of f-peak (as a, pinned)",
    "g": "as f, the bench resuming TLS sessions (--resume) like mail clients do; "
         "latency added over f's sink baseline",
    "i": "as e (shared cores) with the clients' reconnects spread over time (--stagger); "
         "latency added over e's sink baseline",
    "h": "as f with full handshakes, the clients' reconnects spread over time (--stagger) "
         "instead of all 50 at once every 5,000 messages; latency added over f's sink baseline",
}

def nested(key, field):
    """The value of r[key][field], or None when the report has none (older bench) or 0."""
    return lambda r: r.get(key, {}).get(field) or None


def latency_rows(scenario, later=True, setup=True):
    """The latency rows of a paced scenario: p50, p99 (read by the bench and at its
    socket), the first messages' p99, the later messages' p99 and the session set-up p99."""
    rows = [
        (scenario, "p50 latency ms", nested("latency_ms", "p50"), None),
        (scenario, "p99 latency ms", nested("latency_ms", "p99"), None),
        (scenario, "p99 latency at the load generator's socket ms",
         nested("socket_latency_ms", "p99"), None),
        (scenario, "p99 first message of a session ms", nested("first_latency_ms", "p99"), None),
    ]
    if later:
        rows.append((scenario, "p99 later messages ms", nested("later_latency_ms", "p99"), None))
    if setup:
        rows.append((scenario, "p99 session set-up (connect until ready to send) ms",
                     nested("setup_latency_ms", "p99"), None))
    return rows


def load_generator_row(scenario):
    return (scenario, "load generator: its loop turns of 1 ms or more, ms",
            lambda r: r.get("bench_loop", {}).get("long_turns_ms"), None)


# scenario, label, how to get the value from one report, target (op, ratio) or None
METRICS = [
    ("a", "messages/s", lambda r: r["messages_per_s"], (">=", 1.0)),
    ("a", "server CPU us/message", lambda r: r.get("server_cpu_us_per_message"), ("<=", 1.0)),
    ("a", "p99 latency ms", lambda r: r["latency_ms"]["p99"], None),
    ("b", "sessions/s", lambda r: r["sessions_per_s"], (">=", 1.5)),
    ("b", "server CPU us/session", lambda r: r.get("server_cpu_us_per_session"), ("<=", 0.67)),
    ("b", "p99 latency ms", lambda r: r["latency_ms"]["p99"], None),
    ("c", "MB/s", lambda r: r["mb_per_s"], (">=", 1.0)),
    ("c", "server CPU ms/MB", lambda r: r.get("server_cpu_ms_per_mb"), ("<=", 1.0)),
    ("d", "KiB per idle TLS connection", lambda r: r.get("rss_per_connection_kib"), ("<=", 0.75)),
    ("e", "offered rate msg/s", lambda r: r.get("rate"), None),
    ("e", "messages/s achieved", lambda r: r["messages_per_s"], None),
    *latency_rows("e"),
    ("e", "server CPU us/message", lambda r: r.get("server_cpu_us_per_message"), None),
    *latency_rows("i", later=False),
    ("f-peak", "messages/s (pinned, unpaced)", lambda r: r["messages_per_s"], None),
    ("f-peak", "server CPU us/message", lambda r: r.get("server_cpu_us_per_message"), None),
    ("f", "offered rate msg/s", lambda r: r.get("rate"), None),
    ("f", "messages/s achieved", lambda r: r["messages_per_s"], None),
    *latency_rows("f"),
    *latency_rows("g", setup=False),
    *latency_rows("h"),
    load_generator_row("f"),
    load_generator_row("h"),
    ("g", "TLS handshakes resumed %",
     lambda r: 100.0 * r["tls_resumed"] / r["tls_handshakes"] if r.get("tls_handshakes") else None,
     None),
]


def load(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def values(results, scenario, server, get):
    out = []
    for r in results:
        if r["scenario"] == scenario and r["server"] == server:
            v = get(r)
            if v is not None:
                out.append(float(v))
    return out


def fmt(v):
    if v is None:
        return "-"
    if abs(v) >= 100:
        return "%.0f" % v
    if abs(v) >= 10:
        return "%.1f" % v
    return "%.3g" % v


def cell(vs):
    if not vs:
        return "-", None
    med = statistics.median(vs)
    if len(vs) == 1:
        return fmt(med), med
    return "%s (%s–%s)" % (fmt(med), fmt(min(vs)), fmt(max(vs))), med


def failures(results, scenario, server):
    total = 0
    reasons = {}
    for r in results:
        if r["scenario"] == scenario and r["server"] == server:
            total += r.get("failures", 0)
            for k, n in r.get("failure_reasons", {}).items():
                reasons[k] = reasons.get(k, 0) + n
    return total, reasons


# How the p99 of a message is read: as the load generator saw it (until it read the final
# reply), and at its socket (until the reply reached the socket, less the generator's own
# time between a reply and its next request): the second leaves out the generator's
# delays, e.g. its loop busy with its own clients' TLS handshakes.
LATENCY_VIEWS = (
    ("latency_ms", "read by the load generator"),
    ("socket_latency_ms", "at the load generator's socket"),
)


def added_latency_rows(results, rounds, scenario, baseline):
    """The p99 of the sink alone at the same rate (measured in scenario `baseline`),
    and what each proxy adds to it (per round: proxy p99 - sink p99, then the median
    over rounds), in both views of LATENCY_VIEWS."""
    rows = []
    for key, view in LATENCY_VIEWS:
        rows += added_latency_view(results, rounds, scenario, baseline, key, view)
    return rows


def added_latency_view(results, rounds, scenario, baseline, key, view):
    p99 = nested(key, "p99")
    sink_p99 = values(results, baseline, "sink", p99)
    if not sink_p99 or not (values(results, scenario, "nginx", p99) or
                            values(results, scenario, "portcullis", p99)):
        return []
    s_text, _ = cell(sink_p99)
    rows = []
    if baseline == scenario:
        rows.append("| %s | p99 direct to sink (plain), %s, ms | %s | %s |  |  |  |"
                    % (scenario, view, s_text, s_text))
    added = []
    for server in ("nginx", "portcullis"):
        per_round = []
        for rnd in rounds:
            in_round = [r for r in results if r["round"] == rnd]
            p = values(in_round, scenario, server, p99)
            s = values(in_round, baseline, "sink", p99)
            if p and s:
                per_round.append(p[0] - s[0])
        added.append(cell(per_round))
    met = ""
    if added[1][1] is not None:
        met = "yes" if added[1][1] < 1.0 else "NO"
    rows.append("| %s | p99 added over sink, %s, ms | %s | %s | - | portcullis < 1 ms | %s |"
                % (scenario, view, added[0][0], added[1][0], met))
    return rows


def main():
    results = load(sys.argv[1])
    out = []
    if len(sys.argv) > 2:
        with open(sys.argv[2]) as f:
            out += ["    " + line.rstrip() for line in f]
        out.append("")
    rounds = sorted({r["round"] for r in results})
    loads = [r["loadavg_before"] for r in results if "loadavg_before" in r]
    if loads:
        out.append("1-minute load average before each run: %.2f to %.2f (2 cores; other "
                   "processes on the machine add noise)" % (min(loads), max(loads)))
    if loads:
        out.append("")
    out.append("Medians over %d round(s), range in parentheses; ratio = portcullis / nginx."
               % len(rounds))
    out.append("")
    out.append("| scenario | metric | nginx | portcullis | ratio | target | met |")
    out.append("|---|---|---|---|---|---|---|")
    for scenario, label, get, target in METRICS:
        n_text, n_med = cell(values(results, scenario, "nginx", get))
        p_text, p_med = cell(values(results, scenario, "portcullis", get))
        if n_med is None and p_med is None:
            continue
        ratio = p_med / n_med if n_med and p_med is not None else None
        target_text, met = "", ""
        if target:
            op, want = target
            target_text = "%s %.2fx" % ("≥" if op == ">=" else "≤", want)
            if ratio is not None:
                met = "yes" if (ratio >= want if op == ">=" else ratio <= want) else "NO"
        out.append("| %s | %s | %s | %s | %s | %s | %s |" % (
            scenario, label, n_text, p_text, "%.2fx" % ratio if ratio is not None else "-",
            target_text, met))
    for scenario, baseline in (("e", "e"), ("i", "e"), ("f", "f"), ("g", "f"), ("h", "f")):
        out += added_latency_rows(results, rounds, scenario, baseline)
    out.append("")
    out.append("Scenarios: " + "; ".join("%s = %s" % kv for kv in SCENARIOS.items()) + ".")
    out.append("CPU = utime+stime of all the server's processes during the measured window "
               "(/proc/PID/stat); MB = 10^6 bytes of message content; idle memory = "
               "(VmRSS with N idle connections − VmRSS before) / N.")
    notes = []
    for scenario in sorted({r["scenario"] for r in results}):
        for server in ("nginx", "portcullis", "sink"):
            total, reasons = failures(results, scenario, server)
            if total:
                top = sorted(reasons.items(), key=lambda kv: -kv[1])[:3]
                notes.append("%s/%s: %d failures (%s)" % (
                    scenario, server, total, "; ".join("%dx %s" % (n, k) for k, n in top)))
    for r in results:
        if r.get("kind") == "idle" and r.get("ready") != r.get("requested"):
            notes.append("d/%s round %d: only %s of %s idle connections ready" % (
                r["server"], r["round"], r.get("ready"), r.get("requested")))
        if r.get("stopped_early"):
            notes.append("%s/%s round %d stopped early (too many failures)" % (
                r["scenario"], r["server"], r["round"]))
    out.append("")
    out.append("Failures: " + ("none (every reply was the expected one)" if not notes
                               else "; ".join(notes)))
    tls = sorted({"%s: %s" % (r["server"], r["tls"]) for r in results if r.get("tls")})
    if tls:
        out.append("TLS negotiated: " + ", ".join(tls) + ".")
    print("\n".join(out))


if __name__ == "__main__":
    main()
