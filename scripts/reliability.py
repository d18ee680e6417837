#!/usr/bin/env python3
"""Ferry's reliability suite: the service under crashes, races, hostile connections and a full disk, with figures.

    scripts/reliability.py [--ferry PATH] [--rounds 5] [--races 200] [--idle 1000] [--slowloris 200]

Runs a real `ferry serve` (the release binary unless --ferry) on loopback, each part against a fresh data directory:
  1. kill -9 during 50 parallel uploads, --rounds times: after each restart every acknowledged upload is catalogued
     with its exact bytes, and `ferry fsck` finds no orphan blob and no row without its blob;
  2. a delete racing an upload of the same archive, --races times: the row and its blob always agree;
  3. --idle idle connections plus --slowloris connections that send one header byte a second, all from 127.0.0.1:
     /healthz from 127.0.0.2 keeps answering (p50/p99 reported, p99 must stay under 50 ms);
  4. a full disk (a 24 MiB tmpfs, needs root): upload 507, /readyz LOW_DISK_SPACE, delete works, upload works again.
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
    def __init__(self, ferry, data):
        self.ferry, self.data, self.port, self.process = ferry, data, free_port(), None

    def start(self):
        log = open(os.path.join(os.path.dirname(self.data), "service.log"), "a")
        self.process = subprocess.Popen([self.ferry, "serve", "--listen", f"127.0.0.1:{self.port}", "--data-dir", self.data,
                                         "--min-free-space", "2M",
                                         "--migrations-dir", os.path.join(ROOT, "migrations"), "--web-root", os.path.join(ROOT, "web")],
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
        results = {}
        def upload(index):
            try:
                status, body = service.request("POST", "/api/v1/checkpoints", bodies[index], timeout=60)
                if status == 201: results[index] = json.loads(body)["checkpoint"]["id"]
            except (OSError, http.client.HTTPException, ValueError):
                pass
        threads = [threading.Thread(target=upload, args=(i,)) for i in range(50)]
        for thread in threads: thread.start()
        time.sleep(random.uniform(0.01, 0.25))  # mid-flight: 50 uploads take about half a second here
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

def part_connections(ferry, idle, slowloris, workdir):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, idle + slowloris + 256)), hard))
    data = os.path.join(workdir, "connections", "data"); os.makedirs(os.path.dirname(data))
    service = Service(ferry, data); service.start()
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
    return {"idle": idle, "slowloris": slowloris, "opened": len(sockets) + len(slow), "p50_ms": round(p50, 2), "p99_ms": round(p99, 2), "errors": errors}

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
        print("4. disk full", file=sys.stderr); disk = part_disk_full(args.ferry, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"| check | result |\n| --- | --- |")
    print(f"| kill -9 during 50 parallel uploads, {crash['rounds']} rounds | {crash['acknowledged']} uploads acknowledged, {crash['lost']} lost; the crashes left {crash['orphans_left_by_crashes']} orphan blob(s) and {crash['rows_without_blob_left_by_crashes']} row(s) without a blob, and after each restart fsck found 0 and 0 |")
    print(f"| delete racing an upload of the same archive, {race['races']} times | {race['broken']} broken rows |")
    print(f"| {connections['idle']} idle + {connections['slowloris']} slowloris connections from 127.0.0.1 ({connections['opened']} opened) | /healthz from 127.0.0.2: p50 {connections['p50_ms']} ms, p99 {connections['p99_ms']} ms, {connections['errors']} errors in 200 |")
    if disk:
        print(f"| disk full (24 MiB tmpfs) | upload {disk['upload_when_full']}, /readyz {disk['readyz_when_full']}, delete {disk['delete_when_full']}, upload after the delete {disk['upload_after_delete']} |")
    if failures:
        print(f"{len(failures)} check(s) failed", file=sys.stderr); sys.exit(1)

if __name__ == "__main__":
    main()
