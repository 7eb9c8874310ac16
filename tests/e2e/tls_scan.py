#!/usr/bin/env python3
"""TLS scan: runs testssl.sh (Debian package testssl.sh) against the STARTTLS and the
implicit-TLS listener of a real gateway and judges its JSON findings.

    python3 tests/e2e/tls_scan.py --binary build/portcullis [--report FILE]

Each check prints PASS/FAIL; the last line is "N passed, N failed". The checks:
no SSLv2/SSLv3/TLS 1.0/TLS 1.1, TLS 1.2 and 1.3 offered, no NULL/aNULL/export/LOW/3DES/
"AVERAGE" (obsolete CBC) cipher categories, forward secrecy offered, and no vulnerability
finding whose severity is above OK/INFO. The gateway serves both an ECDSA and an RSA
certificate as the e2e fixture configures it.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

NOT_OFFERED = ("SSLv2", "SSLv3", "TLS1", "TLS1_1")
OFFERED = ("TLS1_2", "TLS1_3")
WEAK_CATEGORIES = ("cipherlist_NULL", "cipherlist_aNULL", "cipherlist_EXPORT",
                   "cipherlist_LOW", "cipherlist_3DES_IDEA", "cipherlist_AVERAGE")
# Findings testssl reports that are about the test setup, not the TLS stack: a
# self-signed throwaway certificate without OCSP/CT/CAA, and our choice of client.
SETUP_FINDINGS = ("cert_", "intermediate_", "chain_of_trust", "OCSP", "DNS_CAArecord",
                  "certificate_transparency", "cert_chain_of_trust", "pre_128cipher",
                  "scanProblem", "engine_problem", "clientsimulation", "HSTS", "HPKP",
                  "banner", "cookie", "security_headers", "X-", "trust",
                  "DNS", "overall_grade", "grade_cap")
BAD_SEVERITIES = ("LOW", "MEDIUM", "HIGH", "CRITICAL")


def run_testssl(target, starttls, out_json):
    args = ["testssl", "--quiet", "--color", "0", "--warnings", "off", "--fast",
            "--sneaky", "-p", "-s", "-f", "-U", "--jsonfile", out_json]
    if starttls:
        args += ["--starttls", "smtp"]
    args.append(target)
    p = subprocess.run(args, capture_output=True, text=True, timeout=600,
                       stdin=subprocess.DEVNULL)
    if not os.path.exists(out_json):
        raise RuntimeError("testssl produced no JSON (exit %d): %s" % (p.returncode,
                                                                       p.stdout[-2000:]))
    with open(out_json) as f:
        return json.load(f), p.stdout


def judge(name, findings):
    """Returns a list of (check name, ok, detail)."""
    by_id = {}
    for item in findings:
        by_id.setdefault(item.get("id", ""), []).append(item)
    results = []

    def finding(fid):
        items = by_id.get(fid, [])
        return items[0].get("finding", "") if items else None

    for proto in NOT_OFFERED:
        f = finding(proto)
        results.append(("%s: %s not offered" % (name, proto),
                        f is not None and f.startswith("not offered"), f))
    for proto in OFFERED:
        f = finding(proto)
        results.append(("%s: %s offered" % (name, proto),
                        f is not None and f.startswith("offered"), f))
    for cat in WEAK_CATEGORIES:
        f = finding(cat)
        results.append(("%s: %s" % (name, cat), f is not None and f.startswith("not offered"), f))
    fs = finding("FS") or finding("PFS")
    results.append(("%s: forward secrecy" % name, fs is not None and "offered" in fs
                    and "not offered" not in fs, fs))
    bad = []
    for item in findings:
        fid = item.get("id", "")
        if item.get("severity") in BAD_SEVERITIES and not fid.startswith(SETUP_FINDINGS):
            bad.append("%s=%s (%s)" % (fid, item.get("finding"), item.get("severity")))
    results.append(("%s: no vulnerability or weakness finding" % name, not bad, "; ".join(bad)))
    return results


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--report", help="write the human-readable testssl output here")
    args = ap.parse_args()
    if shutil.which("testssl") is None:
        print("FAIL tls_scan: testssl not installed (Debian package testssl.sh)")
        print("0 passed, 1 failed")
        return 1
    fx = harness.Fixture(os.path.abspath(args.binary))
    passed = failed = 0
    reports = []
    try:
        fx.start()
        work = tempfile.mkdtemp(prefix="tls-scan-")
        for name, port, starttls in (("starttls", fx.port_starttls, True),
                                     ("implicit", fx.port_implicit, False)):
            findings, text = run_testssl("127.0.0.1:%d" % port, starttls,
                                         os.path.join(work, name + ".json"))
            reports.append("==== %s listener (127.0.0.1:%d)\n%s" % (name, port, text))
            for check, ok, detail in judge(name, findings):
                if ok:
                    passed += 1
                    print("PASS %s" % check)
                else:
                    failed += 1
                    print("FAIL %s: %s" % (check, detail))
        shutil.rmtree(work, ignore_errors=True)
    except Exception as e:  # a scan that cannot run is a failure, never a pass
        failed += 1
        print("FAIL tls_scan: %s" % e)
    finally:
        problems = fx.teardown(failed=failed > 0)
        for problem in problems or []:
            failed += 1
            print("FAIL tls_scan teardown: %s" % problem)
    if args.report:
        with open(args.report, "w") as f:
            f.write("\n".join(reports))
    print("%d passed, %d failed" % (passed, failed))
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
