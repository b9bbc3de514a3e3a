"""Turns the parts' results into one table: every figure next to the bare baseline measured
in the same run on the same database, the ratio, and the target."""

from __future__ import annotations

import math
import os


def f(x, spec: str = ",.0f") -> str:
    try:
        if x is None or (isinstance(x, float) and math.isnan(x)):
            return "-"
        return format(x, spec)
    except (TypeError, ValueError):
        return str(x)


def ratio(a, b) -> float | None:
    try:
        return a / b if a and b else None
    except TypeError:
        return None


def verdict(value, target: float | None, higher_is_better: bool) -> str:
    if value is None or target is None:
        return ""
    ok = value >= target if higher_is_better else value <= target
    return "met" if ok else "NOT met"


WRK_CONNS_NOTE = "16 connections"


class Table:
    HEAD = ("figure", "value", "bare (same run)", "ratio", "target", "details")

    def __init__(self) -> None:
        self.rows: list[tuple[str, ...]] = []

    def add(self, figure: str, value: str, bare: str = "", r: str = "", target: str = "", details: str = "") -> None:
        self.rows.append((figure, value, bare, r, target, details))

    def section(self, title: str) -> None:
        self.rows.append((title, "", "", "", "", ""))

    def render(self) -> str:
        widths = [max(len(r[i]) for r in [self.HEAD, *self.rows]) for i in range(5)]
        out = ["  ".join(h.ljust(w) for h, w in zip(self.HEAD, widths, strict=False)) + "  details",
               "  ".join("-" * w for w in widths) + "  -------"]
        for r in self.rows:
            cells = zip(r, widths, strict=False)
            out.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(cells))
                       + ("  " + r[5] if r[5] else ""))
        return "\n".join(out)


def target_cell(value, target, higher: bool, fmt_spec: str = ".2f", unit: str = "") -> str:
    if target is None:
        return ""
    sign = "≥" if higher else "≤"
    v = verdict(value, target, higher)
    return f"{sign}{format(target, fmt_spec)}{unit} {v}".strip()


def build(results: dict) -> Table:
    t = Table()
    acc = {k: results.get(f"accept_{k}", {}) for k in ("sqlite", "pg")}
    bare_sqlite = acc["sqlite"].get("bare", {}).get("rate")

    # --- load headroom
    triv = acc["sqlite"].get("trivial")
    if triv:
        bare = acc["sqlite"].get("bare", {})
        t.add("load: wrk vs do-nothing ASGI endpoint", f"{f(triv.get('rate'))} req/s", f"{f(bare.get('rate'))} req/s",
              f"{f(ratio(triv.get('rate'), bare.get('rate')), '.1f')}x", "",
              f"wrk used {f(bare.get('wrk_cpu_cores'), '.2f')} cores during the bare run, "
              f"{f(triv.get('wrk_cpu_cores'), '.2f')} on the trivial one: the generator is not the limit")

    # --- a. accept
    for db, label in (("sqlite", "SQLite"), ("pg", "PostgreSQL")):
        a = acc[db]
        if "error" in a or "skipped" in a:
            t.add(f"a. accept ({label})", "ERROR" if "error" in a else "SKIPPED",
                  details=a.get("error") or a.get("skipped"))
            continue
        b = a.get("bare", {})
        b_cpu = ratio(b.get("server_cpu_cores"), b.get("rate"))
        t.add(f"a. bare Flask+1 INSERT ({label})", f"{f(b.get('rate'))} req/s", "", "1.00", "",
              f"p50 {f(b.get('p50_ms'), '.1f')} / p99 {f(b.get('p99_ms'), '.1f')} ms; server "
              f"{f(b_cpu and b_cpu * 1e3, '.2f')} CPU ms/req")
        for mode, name in (("noworker", "accept only, EMBEDDED_WORKER=false"), ("embedded", "embedded default")):
            r = a.get(mode, {})
            rr = ratio(r.get("rate"), b.get("rate"))
            cpu = ratio(r.get("server_cpu_cores"), r.get("rate"))
            t.add(f"a. POST /v1/messages ({label}, {name})", f"{f(r.get('rate'))} req/s", f"{f(b.get('rate'))} req/s",
                  f(rr, ".2f"), target_cell(rr, 0.5, True),
                  f"p50 {f(r.get('p50_ms'), '.1f')} / p99 {f(r.get('p99_ms'), '.1f')} ms "
                  f"(bare {f(b.get('p50_ms'), '.1f')}"
                  f" / {f(b.get('p99_ms'), '.1f')}); server {f(cpu and cpu * 1e3, '.2f')} CPU ms/req; "
                  f"non-2xx {r.get('non2xx')}")

    # --- b + c. end to end, receipts
    e = results.get("e2e", {})
    if "error" in e:
        t.add("b. accept -> provider call", "ERROR", details=e["error"])
    elif e:
        tp, lat, rc = e.get("throughput", {}), e.get("latency", {}), e.get("receipts", {})
        rr = ratio(tp.get("rate"), bare_sqlite)
        t.add("b. accept -> Twilio fake, msgs/s (SQLite, embedded)", f"{f(tp.get('rate'), ',.1f')} msg/s",
              f"{f(bare_sqlite)} req/s", f(rr, ".2f"), target_cell(rr, 0.2, True),
              f"{tp.get('reached')}/{tp.get('accepted')} of {tp.get('n')} reached the fake; batch posted by 16 "
              f"connections at {f(tp.get('post_rate'))} accepted/s")
        t.add(f"b. latency at {f(lat.get('rate'), '.1f')} msg/s open loop, p99", f"{f(lat.get('p99_ms'))} ms", "", "",
              target_cell(lat.get("p99_ms"), 250, False, ".0f", " ms"),
              f"p50 {f(lat.get('p50_ms'))} ms, max {f(lat.get('max_ms'))} ms; "
              f"{lat.get('reached')}/{lat.get('accepted')} "
              f"reached; POST alone p50 {f(lat.get('post', {}).get('p50_ms'), '.1f')} / p99 "
              f"{f(lat.get('post', {}).get('p99_ms'), '.1f')} ms; "
              f"generator late p99 {f(lat.get('gen_late_p99_ms'), '.1f')} ms")
        rr = ratio(rc.get("rate"), bare_sqlite)
        cpu = ratio(rc.get("server_cpu_cores"), rc.get("rate"))
        t.add("c. Twilio receipts ingested/s (SQLite)", f"{f(rc.get('rate'))} /s", f"{f(bare_sqlite)} req/s",
              f(rr, ".2f"),
              target_cell(rr, 0.3, True),
              f"signed sent+delivered callbacks by wrk; p50 {f(rc.get('p50_ms'), '.1f')} / "
              f"p99 {f(rc.get('p99_ms'), '.1f')} ms;"
              f" non-2xx {rc.get('non2xx')}; server {f(cpu and cpu * 1e3, '.2f')} CPU ms/receipt; "
              f"messages after: {rc.get('message_statuses')}")

    # --- d. workers
    w = results.get("workers", {})
    if "error" in w or "skipped" in w:
        t.add("d. worker scaling (PG + Redis)", "ERROR" if "error" in w else "SKIPPED",
              details=w.get("error") or w.get("skipped"))
    elif w:
        for name, label in (("", "fake answering at once"),
                            ("slow_", f"fake answering in {w.get('provider_latency_ms')} ms")):
            for k in ("w1", "w2"):
                r = w.get(f"{name}{k}", {})
                cores = r.get("cores") or {}
                t.add(f"d. drain, {r.get('workers')} x `worker -c 4`, {label}",
                      f"{f(r.get('rate_10_90'))} msg/s",
                      "", "", "", f"{r.get('reached')}/{r.get('backlog')} delivered in {f(r.get('drain_s'), '.1f')} s "
                      f"(first->last {f(r.get('rate_all'))} msg/s); "
                      f"first send {f(r.get('startup_s'), '.1f')} s after start; cores used 10%-90%: "
                      + ", ".join(f"{g} {c:.2f}" for g, c in sorted(cores.items()))
                      + f" (total {sum(cores.values()):.2f} of {os.cpu_count()})")
        s = w.get("scaling")
        t.add("d. scaling 2 workers / 1 worker", f"{f(s, '.2f')}x", "", "", target_cell(s, 1.7, True, ".1f"),
              "10%-90% arrival rates, fake answering at once: the workers' CPU is the limit, and they share "
              "the box's cores with PostgreSQL, Redis and the fake (cores used: rows above)")
        s = w.get("slow_scaling")
        t.add(f"d. scaling, provider taking {w.get('provider_latency_ms')} ms", f"{f(s, '.2f')}x", "", "", "",
              "the same with the provider's response time as the limit instead of the box's CPU")

    # --- e. cost
    c = results.get("cost", {})
    if "error" in c:
        t.add("e. cost per message", "ERROR", details=c["error"])
    elif c:
        pm, ac, dl = c.get("per_message", {}), c.get("accept", {}), c.get("deliver", {})
        b = acc["sqlite"].get("bare", {})
        b_cpu = ratio(b.get("server_cpu_cores"), b.get("rate"))
        t.add("e. SQL statements per message, POST -> provider call", f(pm.get("to_provider_stmts"), ".1f"), "1", "",
              target_cell(pm.get("to_provider_stmts"), 8, False, ".0f"),
              f"accept {f(ac.get('stmts'), '.1f')} ({f(ac.get('selects'), '.1f')} SELECT), claim "
              f"{f(dl.get('to_provider_stmts'), '.1f')}; with the outcome recorded: {f(pm.get('stmts'), '.1f')} "
              f"(deliver {f(dl.get('stmts'), '.1f')}, {f(dl.get('selects'), '.1f')} SELECT); in-process, SQLite, "
              f"{ac.get('n')} otp messages")
        t.add("e. commits per message, POST -> provider call", f(pm.get("to_provider_commits"), ".1f"), "1", "",
              target_cell(pm.get("to_provider_commits"), 3, False, ".0f"),
              f"accept {f(ac.get('commits'), '.1f')}, claim {f(dl.get('to_provider_commits'), '.1f')}; "
              f"with the outcome: {f(pm.get('commits'), '.1f')}")
        t.add("e. CPU ms per message: accept", f(ac.get("cpu_ms"), ".2f"), f(b_cpu and b_cpu * 1e3, ".2f"),
              f(ratio(ac.get("cpu_ms"), b_cpu and b_cpu * 1e3), ".1f") + "x", "",
              "Flask test client + accept path, time.process_time(); bare = server CPU ms/req under wrk (part a)")
        t.add("e. CPU ms per message: deliver", f(dl.get("cpu_ms"), ".2f"), "", "", "",
              "dispatcher.deliver() incl. the HTTP call to the fake (fake in its own process); "
              f"outcomes {dl.get('outcomes')}")

    # --- f. streams
    s = results.get("streams", {})
    if "error" in s:
        t.add("f. in-app streams", "ERROR", details=s["error"])
    elif s:
        none, with_, op, ia = s.get("none", {}), s.get("with", {}), s.get("open", {}), s.get("inapp", {})
        rr = ratio(with_.get("p99_ms"), none.get("p99_ms"))
        t.add(f"f. POST p99 at {f(s.get('rate'), '.1f')}/s with {op.get('opened')} streams open",
              f"{f(with_.get('p99_ms'), '.1f')} ms", f"{f(none.get('p99_ms'), '.1f')} ms (no streams)",
              f(rr, ".2f"), target_cell(rr, 1.5, False, ".1f"),
              f"p50 {f(with_.get('p50_ms'), '.1f')} vs {f(none.get('p50_ms'), '.1f')} ms; {op.get('opened')} opened in "
              f"{f(op.get('open_seconds'), '.1f')} s, failed {op.get('failed')}")
        t.add("f. accept -> item on user's stream, p99", f"{f(ia.get('p99_ms'))} ms", "", "",
              target_cell(ia.get("p99_ms"), 500, False, ".0f", " ms"),
              f"p50 {f(ia.get('p50_ms'))} ms; {ia.get('on_stream')}/{ia.get('accepted')} onboarding messages shown")
        t.add("f. server memory per open stream", f"{f(s.get('kb_per_stream'), '.1f')} KB", "", "", "",
              f"RSS {f((s.get('rss_mb') or [None])[0], '.0f')} -> {f((s.get('rss_mb') or [None, None])[1], '.0f')} MB")

    # --- g. batch send
    bt = results.get("batch", {})
    if "error" in bt or "skipped" in bt:
        if "error" in bt:
            t.add("g. batch send", "ERROR", details=bt["error"])
    elif bt:
        single, batch = bt.get("single", {}), bt.get("batch", {})
        rr = ratio(batch.get("rate"), single.get("rate"))
        t.add("g. single POST /v1/messages (SQLite, accept only)", f"{f(single.get('rate'))} recipients/s", "", "1.00",
              "", f"wrk, {WRK_CONNS_NOTE}; p99 {f(single.get('p99_ms'), '.1f')} ms")
        t.add(f"g. POST /v1/messages/batch x{bt.get('batch_size')} (same server)",
              f"{f(batch.get('rate'))} recipients/s", f"{f(single.get('rate'))} single/s", f"{f(rr, '.2f')}x", "",
              f"{batch.get('batches')} batches over {bt.get('conns')} connections, {batch.get('accepted')} accepted "
              f"/ {batch.get('refused')} refused; per batch p50 {f(batch.get('p50_ms'))} / p99 "
              f"{f(batch.get('p99_ms'))} ms")

    # --- routing
    r = results.get("routing", {})
    if r and "error" not in r:
        t.add("routing decisions/s (1 thread, pure)", f"{f(r.get('rate'))} /s", "", "",
              f"≥{r.get('target'):,} {verdict(r.get('rate'), r.get('target'), True)}" if r.get("target") else "",
              f"{f(r.get('us'), '.1f')} µs/decision over {r.get('scenarios')} scenarios (bench/bench_policy.py mix)")
    elif r:
        t.add("routing decisions/s", "ERROR", details=r["error"])
    return t
