#!/usr/bin/env python3
"""Ferry's reliability suite: the service under crashes, races, hostile connections and a full disk, with figures.

    scripts/reliability.py [--ferry PATH] [--rounds 5] [--races 200] [--idle 1000] [--slowloris 200]

Runs a real `ferry serve` (the release binary unless --ferry) on loopback, each part against a fresh data directory:
  1. kill -9 during 50 parallel uploads, --rounds times: after each restart every acknowledged upload is catalogued
     with its exact bytes, and `ferry fsck` finds no orphan blob and no row without its blob;
  2. a delete racing an upload of the same archive, --races times: the row and its blob always agree;
  3. --idle idle connections plus --slowloris connections that send one header byte a second, all from 127.0.0.1:
     /healthz from 127.0.0.2 keeps answering (p50/p99 reported, p99 must stay under 50 ms);
  4. a full disk (a 24 MiB tmpfs, needs root): upload 507, /readyz LOW_DISK_SPACE, delete works, upload works again;
  5. 100+ hostile requests and archives, each with its expected status and code; the service stays up under a
     256 MiB peak memory ceiling.
Prints a markdown table for docs/reliability.md and exits non-zero if any check fails. Traffic goes to loopback only.
"""
import argparse, hashlib, http.client, json, os, random, resource, shutil, signal, socket, subprocess, sys, tarfile
import tempfile, threading, time, io

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ARCHIVES = os.environ.get("FERRY_TESTDATA", os.path.join(ROOT, "..", "shared", "testdata", "archives"))
failures = []

def check(condition, what):
    if not condition:
        failures.append(what)
        print(f"  FAILED: {what}", file=sys.stderr)

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close(); return port

class Service:
    def __init__(self, ferry, data, extra=()):
        self.ferry, self.data, self.port, self.process, self.extra = ferry, data, free_port(), None, list(extra)

    def start(self):
        log = open(os.path.join(os.path.dirname(self.data), "service.log"), "a")
        self.process = subprocess.Popen([self.ferry, "serve", "--listen", f"127.0.0.1:{self.port}", "--data-dir", self.data,
                                         "--min-free-space", "2M",
                                         "--migrations-dir", os.path.join(ROOT, "migrations"), "--web-root", os.path.join(ROOT, "web")] + self.extra,
                                        stdout=subprocess.DEVNULL, stderr=log)
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                if self.request("GET", "/healthz")[0] == 200: return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("the service did not start")

    def kill(self):
        self.process.send_signal(signal.SIGKILL); self.process.wait()

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate(); self.process.wait(timeout=30)

    def request(self, method, path, body=None, timeout=30, source=None):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout,
                                                source_address=(source, 0) if source else None)
        try:
            headers = {"Content-Type": "application/octet-stream"} if body is not None else {}
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

def variant(base, nonce):
    """A real archive plus one small extra entry, so every variant has its own digest."""
    out = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(base)) as source, tarfile.open(fileobj=out, mode="w") as target:
        for member in source.getmembers():
            target.addfile(member, source.extractfile(member) if member.isfile() else None)
        data = f"nonce {nonce}\n".encode()
        info = tarfile.TarInfo(f"artifacts/nonce-{nonce}"); info.size = len(data)
        target.addfile(info, io.BytesIO(data))
    return out.getvalue()

def part_crash(ferry, rounds, workdir):
    base = open(os.path.join(ARCHIVES, "podman-counter-none.tar"), "rb").read()
    data = os.path.join(workdir, "crash", "data"); os.makedirs(os.path.dirname(data))
    service = Service(ferry, data); service.start()
    acknowledged, lost, orphans, missing = {}, 0, 0, 0
    for round_ in range(rounds):
        bodies = [variant(base, f"{round_}-{i}") for i in range(50)]
        results, arrived = {}, threading.Condition()
        def upload(index):
            try:
                status, body = service.request("POST", "/api/v1/checkpoints", bodies[index], timeout=60)
                if status == 201:
                    with arrived:
                        results[index] = json.loads(body)["checkpoint"]["id"]; arrived.notify_all()
            except (OSError, http.client.HTTPException, ValueError):
                pass
        threads = [threading.Thread(target=upload, args=(i,)) for i in range(50)]
        for thread in threads: thread.start()
        # Killed mid-flight: once a random number of the uploads (5 to 40) have been acknowledged.
        wanted = random.randint(5, 40)
        with arrived:
            arrived.wait_for(lambda: len(results) >= wanted, timeout=30)
        service.kill()
        for thread in threads: thread.join()
        for index, digest in results.items():
            check(digest == hashlib.sha256(bodies[index]).hexdigest(), f"round {round_}: upload {index} acknowledged with a wrong digest")
            acknowledged[digest] = bodies[index]
        # Before the restart repairs anything: what did the crash leave?
        report = json.loads(subprocess.run([ferry, "fsck", "--data-dir", data, "--json",
                                            "--migrations-dir", os.path.join(ROOT, "migrations")], capture_output=True).stdout or b"{}")
        orphans += len(report.get("orphan_blobs", [])); missing += len(report.get("rows_without_blob", []))
        service.start()
        for digest, body in acknowledged.items():
            status, archive = service.request("GET", f"/api/v1/checkpoints/{digest}/archive")
            if status != 200 or archive != body: lost += 1
        after = json.loads(subprocess.run([ferry, "fsck", "--data-dir", data, "--json",
                                           "--migrations-dir", os.path.join(ROOT, "migrations")], capture_output=True).stdout or b"{}")
        check(not after.get("orphan_blobs") and not after.get("rows_without_blob"), f"round {round_}: fsck after restart: {after}")
        print(f"  round {round_ + 1}: {len(results)} of 50 acknowledged before the kill", file=sys.stderr)
    service.stop()
    check(lost == 0, f"{lost} acknowledged uploads lost")
    return {"rounds": rounds, "acknowledged": len(acknowledged), "lost": lost,
            "orphans_left_by_crashes": orphans, "rows_without_blob_left_by_crashes": missing}

def part_race(ferry, races, workdir):
    base = open(os.path.join(ARCHIVES, "podman-counter-none.tar"), "rb").read()
    data = os.path.join(workdir, "race", "data"); os.makedirs(os.path.dirname(data))
    service = Service(ferry, data); service.start()
    digest = hashlib.sha256(base).hexdigest()
    blob = os.path.join(data, "blobs", "sha256", digest[:2], digest)
    broken = 0
    for _ in range(races):
        if not os.path.exists(blob): service.request("POST", "/api/v1/checkpoints", base)
        a = threading.Thread(target=lambda: service.request("DELETE", f"/api/v1/checkpoints/{digest}"))
        b = threading.Thread(target=lambda: service.request("POST", "/api/v1/checkpoints", base))
        a.start(); b.start(); a.join(); b.join()
        row = service.request("GET", f"/api/v1/checkpoints/{digest}")[0] == 200
        if row != os.path.exists(blob) or (row and service.request("GET", f"/api/v1/checkpoints/{digest}/archive")[0] != 200):
            broken += 1
    service.stop()
    check(broken == 0, f"{broken} broken rows after {races} races")
    return {"races": races, "broken": broken}

def threads(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(next(line.split()[1] for line in f if line.startswith("Threads:")))

def accepted(pid):
    """TCP connections the service holds open (its socket descriptors, less the listening one)."""
    count = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:"): count += 1
        except OSError:
            pass
    return count - 1

def part_connections(ferry, idle, slowloris, workdir, per_address=None):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, idle + slowloris + 256)), hard))
    name = "connections" if per_address is None else f"connections-{per_address}"
    data = os.path.join(workdir, name, "data"); os.makedirs(os.path.dirname(data))
    extra = [] if per_address is None else ["--max-connections-per-address", str(per_address)]
    service = Service(ferry, data, extra); service.start()
    threads_before = threads(service.process.pid)
    sockets, stop = [], threading.Event()
    for _ in range(idle):
        try: sockets.append(socket.create_connection(("127.0.0.1", service.port), timeout=5))
        except OSError: pass
    slow = []
    for _ in range(slowloris):
        try:
            s = socket.create_connection(("127.0.0.1", service.port), timeout=5); s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n"); slow.append(s)
        except OSError: pass
    def drip():
        while not stop.is_set():
            for s in slow:
                try: s.sendall(b"X")
                except OSError: pass
            stop.wait(1)
    dripper = threading.Thread(target=drip); dripper.start()
    time.sleep(0.5)
    held, threads_during = accepted(service.process.pid), threads(service.process.pid)
    times, errors = [], 0
    for _ in range(200):
        started = time.perf_counter()
        try:
            status = service.request("GET", "/healthz", timeout=5, source="127.0.0.2")[0]
            if status != 200: errors += 1
        except OSError:
            errors += 1
        times.append(time.perf_counter() - started)
        time.sleep(0.01)
    stop.set(); dripper.join()
    for s in sockets + slow: s.close()
    service.stop()
    times.sort()
    p50, p99 = times[len(times) // 2] * 1000, times[int(len(times) * 0.99) - 1] * 1000
    check(errors == 0, f"{errors} /healthz requests failed beside the hostile connections")
    check(p99 < 50, f"/healthz p99 {p99:.1f} ms beside the hostile connections")
    return {"idle": idle, "slowloris": slowloris, "opened": len(sockets) + len(slow), "held": held,
            "threads": f"{threads_before} → {threads_during}", "p50_ms": round(p50, 2), "p99_ms": round(p99, 2), "errors": errors}

def part_disk_full(ferry, workdir):
    disk = os.path.join(workdir, "disk"); os.makedirs(disk)
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", disk]).returncode != 0:
        print("DISK-FULL PART SKIPPED: mounting a tmpfs needs root", file=sys.stderr)
        return None
    try:
        service = Service(ferry, os.path.join(disk, "data")); service.start()
        kept = json.loads(service.request("POST", "/api/v1/checkpoints", open(os.path.join(ARCHIVES, "podman-counter-none.tar"), "rb").read())[1])
        big = json.loads(service.request("POST", "/api/v1/checkpoints", open(os.path.join(ARCHIVES, "podman-web-tcp.tar"), "rb").read())[1])
        subprocess.run(["dd", "if=/dev/zero", f"of={disk}/filler", "bs=64k"], capture_output=True)
        subprocess.run(["dd", "if=/dev/zero", f"of={disk}/filler-tail", "bs=512"], capture_output=True)
        refused = service.request("POST", "/api/v1/checkpoints", open(os.path.join(ARCHIVES, "podman-inpod.tar"), "rb").read())[0]
        ready = service.request("GET", "/readyz")
        deleted = service.request("DELETE", f"/api/v1/checkpoints/{big['checkpoint']['id']}")[0]
        again = service.request("POST", "/api/v1/checkpoints", open(os.path.join(ARCHIVES, "podman-inpod.tar"), "rb").read())[0]
        service.stop()
        result = {"upload_when_full": refused, "readyz_when_full": f"{ready[0]} {json.loads(ready[1])['error']['code']}",
                  "delete_when_full": deleted, "upload_after_delete": again}
        check(refused == 507 and ready[0] == 503 and deleted == 204 and again == 201, f"disk-full cycle: {result}")
        return result
    finally:
        subprocess.run(["umount", "-l", disk])

def tar_bytes(entries):
    """A tar built from (name, bytes or None for a directory, kind) tuples; kind is a tarfile type."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as archive:
        for name, data, kind, link in entries:
            info = tarfile.TarInfo(name); info.type = kind
            if link: info.linkname = link
            info.size = len(data) if data is not None and kind == tarfile.REGTYPE else 0
            archive.addfile(info, io.BytesIO(data) if info.size else None)
    return out.getvalue()

def part_hostile(ferry, workdir):
    """Hostile requests and archives, each with the status and code it must get; the service stays up and its peak
    memory stays under a ceiling."""
    import gzip
    data = os.path.join(workdir, "hostile", "data"); os.makedirs(os.path.dirname(data))
    service = Service(ferry, data); service.start()
    counter = open(os.path.join(ARCHIVES, "podman-counter-none.tar"), "rb").read()
    cases = []  # (name, method, path, body, headers, status, code)
    def add(name, method, path, status, code=None, body=None, headers=None):
        cases.append((name, method, path, body, headers or {}, status, code))
    # Routes and methods.
    for path in ["/nope", "/api/v1/nope", "/api/v2/checkpoints", "/api/v1/checkpoints/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd",
                 "/api/v1/checkpoints/%00", "/static/../../etc/passwd", "/api/v1/checkpoints/" + "a" * 70]:
        add(f"GET {path[:40]}", "GET", path, None)
    for method in ["PUT", "PATCH", "DELETE"]:
        add(f"{method} /api/v1/checkpoints", method, "/api/v1/checkpoints", 405, "METHOD_NOT_ALLOWED")
    # Queries.
    for query in ["limit=0", "limit=5000", "limit=abc", "sort=bogus", "order=sideways", "cursor=!!!", "cursor=" + "A" * 5000,
                  "uploaded_after=yesterday"]:
        add(f"list ?{query[:30]}", "GET", "/api/v1/checkpoints?" + query, 400, "INVALID_QUERY")
    for query in ["labels=x", "label=noequals"]:
        add(f"list ?{query}", "GET", "/api/v1/checkpoints?" + query, 400, "INVALID_LABELS")
    for query in ["state=bogus", "limit=0", "limit=null"]:
        add(f"migrations ?{query}", "GET", "/api/v1/migrations?" + query, 400, "INVALID_QUERY")
    add("long poll wait=999", "GET", "/api/v1/migrations/mig-none?wait=999", 400, "INVALID_QUERY")
    # IDs.
    for reference in ["0" * 64, "deadbeef", "zzzz", "sha256:" + "1" * 64]:
        add(f"checkpoint {reference[:20]}", "GET", f"/api/v1/checkpoints/{reference}", None)
    for path in ["/api/v1/checkpoints/" + "0" * 64 + "/archive", "/api/v1/checkpoints/" + "0" * 64 + "/findings", "/api/v1/migrations/mig-none",
                 "/api/v1/nodes/nowhere"]:
        add(f"GET {path[-30:]}", "GET", path, 404)
    # JSON bodies.
    bad_json = [b"", b"{", b"[]", b"null", b"\"text\"", b"{\"target\": 7}", b"{\"checkpoint\": \"x\", \"source\": {\"node\": \"a\", \"container\": \"b\"}, \"target\": \"n\"}",
                b"{\"target\": \"../etc\"}", b"{\"source\": {\"node\": \"a\", \"container\": \"-rf\"}, \"target\": \"b\"}", b"{\"checkpoint\": \"" + b"f" * 64 + b"\", \"target\": \"b\", \"timeout_seconds\": -1}"]
    for body in bad_json:
        add(f"migration {body[:30]!r}", "POST", "/api/v1/migrations", None, body=body, headers={"Content-Type": "application/json"})
    for body in [b"", b"{", b"{\"agent_url\": \"ftp://x\"}", b"{\"name\": \"a\"}", b"{\"agent_url\": 5}"]:
        add(f"heartbeat {body[:30]!r}", "POST", "/api/v1/nodes/node-a/heartbeat", 400, None, body=body, headers={"Content-Type": "application/json"})
    for node in ["..", "a b", "a/b", "-x"]:
        add(f"heartbeat node {node}", "POST", f"/api/v1/nodes/{urllib_quote(node)}/heartbeat", None, body=b"{}", headers={"Content-Type": "application/json"})
    for body in [b"", b"{", b"{\"job\": {}}", b"{\"sent_at\": \"x\", \"job\": {\"id\": \"x\", \"kind\": \"bogus\"}}"]:
        add(f"report {body[:30]!r}", "POST", "/api/v1/nodes/node-a/jobs/mig-x/report", 400, None, body=body, headers={"Content-Type": "application/json"})
    # Uploads.
    add("upload text/plain", "POST", "/api/v1/checkpoints", 415, "UNSUPPORTED_MEDIA_TYPE", body=counter, headers={"Content-Type": "text/plain"})
    add("upload labels=bad", "POST", "/api/v1/checkpoints?labels=%00", 400, "INVALID_LABELS", body=counter)
    add("upload node=../x", "POST", "/api/v1/checkpoints?node=../x", 400, None, body=counter)
    archives = {
        "not a tar": (b"hello world" * 100, 422),
        "empty tar": (b"\0" * 10240, 422),
        "truncated tar": (counter[: len(counter) // 3], 422),
        "gzip of garbage": (gzip.compress(os.urandom(4096)), 422),
        "truncated gzip": (gzip.compress(counter)[:5000], 422),
        "corrupt zstd magic": (b"\x28\xb5\x2f\xfd" + os.urandom(2000), 422),
        "a PNG": (b"\x89PNG\r\n\x1a\n" + os.urandom(500), 422),
        "tar without config.dump": (tar_bytes([("checkpoint/", None, tarfile.DIRTYPE, None), ("spec.dump", b"{}", tarfile.REGTYPE, None)]), 422),
        "config.dump not JSON": (tar_bytes([("checkpoint/", None, tarfile.DIRTYPE, None), ("config.dump", b"not json", tarfile.REGTYPE, None), ("spec.dump", b"{}", tarfile.REGTYPE, None)]), 422),
        "config.dump of 2 MiB": (tar_bytes([("checkpoint/", None, tarfile.DIRTYPE, None), ("config.dump", b"{\"name\": \"" + b"n" * (2 << 20) + b"\"}", tarfile.REGTYPE, None)]), 422),
        "symlink config.dump": (tar_bytes([("checkpoint/", None, tarfile.DIRTYPE, None), ("config.dump", None, tarfile.SYMTYPE, "/etc/passwd"), ("spec.dump", b"{}", tarfile.REGTYPE, None)]), 422),
        "gzip bomb": (gzip.compress(b"\0" * (64 << 20)), 422),
    }
    import bz2, lzma
    for cut in range(1, 16):
        archives[f"counter cut at {cut}/16"] = (counter[: len(counter) * cut // 16], 422)
    for size in [1, 100, 511, 512, 513, 4096, 65536, 1 << 20]:
        archives[f"{size} random bytes"] = (os.urandom(size), 422)
    archives["xz of garbage"] = (lzma.compress(os.urandom(4096)), 422)
    archives["bzip2 of garbage"] = (bz2.compress(os.urandom(4096)), 422)
    archives["xz bomb"] = (lzma.compress(b"\0" * (64 << 20)), 422)
    for name, (body, status) in archives.items():
        add(f"archive: {name}", "POST", "/api/v1/checkpoints", status, None, body=body)
    # A hostile archive that is still a checkpoint: catalogued, with error findings, never restored.
    with tarfile.open(fileobj=io.BytesIO(counter)) as source:
        entries = [(m.name, source.extractfile(m).read() if m.isfile() else None, m.type, m.linkname or None) for m in source.getmembers()]
    add("archive with a symlink to /etc and a hard link to /etc/shadow", "POST", "/api/v1/checkpoints", 201, None,
        body=tar_bytes(entries + [("etc", None, tarfile.SYMTYPE, "/etc"), ("etc/cron.d/x", b"x", tarfile.REGTYPE, None), ("shadow", None, tarfile.LNKTYPE, "/etc/shadow")]))
    # Framing.
    raw = [("two Content-Lengths", b"POST /api/v1/checkpoints HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 9\r\n\r\nhello", 400),
           ("Content-Length and chunked", b"POST /api/v1/checkpoints HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
           ("4000 headers", b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(4000)) + b"\r\n", 431)]
    passed, failed = 0, []
    for name, method, path, body, headers, status, code in cases:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", service.port, timeout=30)
            all_headers = {"Content-Type": "application/octet-stream"} if body is not None and "Content-Type" not in headers else {}
            all_headers.update(headers)
            connection.request(method, path, body=body, headers=all_headers)
            response = connection.getresponse(); text = response.read(); connection.close()
            got_code = None
            try: got_code = json.loads(text)["error"]["code"]
            except (ValueError, KeyError, TypeError): pass
            ok = (response.status == status if status else 400 <= response.status < 500) and (code is None or got_code == code)
            ok = ok and (response.status < 400 or got_code is not None)  # every error is the JSON shape
            if ok: passed += 1
            else: failed.append(f"{name}: {response.status} {got_code}")
        except (OSError, http.client.HTTPException) as error:
            failed.append(f"{name}: {error}")
    for name, payload, status in raw:
        s = socket.create_connection(("127.0.0.1", service.port), timeout=10); s.sendall(payload)
        answer = b""
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk: break
                answer += chunk
        except OSError: pass
        s.close()
        if answer.startswith(b"HTTP/1.1 %d" % status): passed += 1
        else: failed.append(f"{name}: {answer[:40]!r}")
    alive = service.request("GET", "/healthz")[0] == 200
    peak = 0
    with open(f"/proc/{service.process.pid}/status") as status_file:
        for line in status_file:
            if line.startswith("VmHWM:"): peak = int(line.split()[1]) // 1024
    service.stop()
    total = len(cases) + len(raw)
    for item in failed: print(f"  hostile: {item}", file=sys.stderr)
    check(not failed, f"{len(failed)} of {total} hostile requests got an unexpected answer")
    check(alive, "the service died under hostile requests")
    check(peak < 256, f"peak memory {peak} MiB over the 256 MiB ceiling")
    return {"total": total, "passed": passed, "alive": alive, "peak_mib": peak}

def urllib_quote(text):
    import urllib.parse
    return urllib.parse.quote(text, safe="")

def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--ferry", default=os.path.join(ROOT, ".build", "release", "ferry"))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--races", type=int, default=200)
    parser.add_argument("--idle", type=int, default=1000)
    parser.add_argument("--slowloris", type=int, default=200)
    args = parser.parse_args()
    if not os.path.exists(args.ferry):
        subprocess.run(["swift", "build", "-c", "release", "--product", "ferry"], cwd=ROOT, check=True)
    workdir = tempfile.mkdtemp(prefix="ferry-reliability-")
    try:
        print("1. kill -9 during 50 parallel uploads", file=sys.stderr); crash = part_crash(args.ferry, args.rounds, workdir)
        print("2. delete racing upload", file=sys.stderr); race = part_race(args.ferry, args.races, workdir)
        print("3. idle and slowloris connections", file=sys.stderr); connections = part_connections(args.ferry, args.idle, args.slowloris, workdir)
        unlimited = part_connections(args.ferry, args.idle, args.slowloris, workdir, per_address=0)
        print("4. disk full", file=sys.stderr); disk = part_disk_full(args.ferry, workdir)
        print("5. hostile requests and archives", file=sys.stderr); hostile = part_hostile(args.ferry, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"| check | result |\n| --- | --- |")
    print(f"| kill -9 during 50 parallel uploads, {crash['rounds']} rounds | {crash['acknowledged']} uploads acknowledged, {crash['lost']} lost; the crashes left {crash['orphans_left_by_crashes']} orphan blob(s) and {crash['rows_without_blob_left_by_crashes']} row(s) without a blob, and after each restart fsck found 0 and 0 |")
    print(f"| delete racing an upload of the same archive, {race['races']} times | {race['broken']} broken rows |")
    for title, c in [("", connections), (", no per-address limit", unlimited)]:
        print(f"| {c['idle']} idle + {c['slowloris']} slowloris connections from 127.0.0.1{title} ({c['opened']} opened, {c['held']} held by the service; its threads {c['threads']}) | /healthz from 127.0.0.2: p50 {c['p50_ms']} ms, p99 {c['p99_ms']} ms, {c['errors']} errors in 200 |")
    if disk:
        print(f"| disk full (24 MiB tmpfs) | upload {disk['upload_when_full']}, /readyz {disk['readyz_when_full']}, delete {disk['delete_when_full']}, upload after the delete {disk['upload_after_delete']} |")
    print(f"| {hostile['total']} hostile requests and archives | {hostile['passed']} got their expected status and code; the service {'stayed up' if hostile['alive'] else 'DIED'}; peak memory {hostile['peak_mib']} MiB (ceiling 256 MiB) |")
    if failures:
        print(f"{len(failures)} check(s) failed", file=sys.stderr); sys.exit(1)

if __name__ == "__main__":
    main()
