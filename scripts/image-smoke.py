#!/usr/bin/env python3
"""Smoke-test the hibernator image without a container runtime.

scripts/image.sh builds the image and exports it as an OCI layout; this
script verifies and unpacks that layout into a root filesystem and runs the
image's entrypoint there the way the kubelet runs the chart's pods:

1. The image config: entrypoint `/hibernator` and no `Cmd` (the chart's
   containers pass only `args`), user = the chart's runAsUser:runAsGroup,
   every containerPort the chart declares is exposed, the OCI labels are set.
   Every blob matches its digest.
2. The root filesystem: `/hibernator`, the CA bundle, the nonroot user, /tmp.
3. Inside the image's root filesystem (chroot) as uid/gid 65532 with no new
   privileges, in a private mount namespace with the root read-only
   (`readOnlyRootFilesystem`), emptyDir volumes as tmpfs, the chart's
   ConfigMaps and Secrets bind-mounted read-only at their mount paths, /proc,
   a minimal /dev, and the image's Env plus the container's env:
   - `/hibernator --version` and `/hibernator runner --help`;
   - every container of every pod the chart renders (default values and
     charts/hibernator/ci/*.yaml) with its args plus `--dry-run`, as
     scripts/chart-check.py does with the host binary (the webhook's dry run
     loads the chart's serving certificate);
   - the default values' webhook container served for real on a free port:
     GET /healthz and POST /validate (the example HibernatePlan is admitted,
     a broken copy denied) over TLS verified against the chart's CA for the
     admission Service's DNS name; the process runs as 65532 with no
     capabilities and exits 0 on SIGTERM.

Needs root (chroot, mount namespaces) and the chart venv
(scripts/requirements-chart.txt). Prints every failure with the command and
its output; exits 1 if anything failed.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import os
import shlex
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

sys.dont_write_bytecode = True  # no __pycache__ next to the sources

import helm_python as helm
import yaml

from chart_check.common import CHART, NAMESPACE, RELEASE, ROOT, Report, load_yaml_docs
from chart_check.pods import container_env, materialize_volumes, pod_specs

REQUIRED_LABELS = (
    "org.opencontainers.image.title",
    "org.opencontainers.image.description",
    "org.opencontainers.image.source",
    "org.opencontainers.image.licenses",
)
CA_BUNDLE = "etc/ssl/certs/ca-certificates.crt"
TIMEOUT = 60


def tool(name: str) -> str:
    path = shutil.which(name)
    if not path:
        raise SystemExit(f"image-smoke: `{name}` is not installed (util-linux/coreutils)")
    return path


# ---------------------------------------------------------------- the layout


def read_layout(oci: Path, report: Report) -> tuple[dict, list[Path]]:
    """The image config and layer blobs of the single image in an OCI layout."""
    index = json.loads((oci / "index.json").read_text())
    manifests = index.get("manifests", [])
    if len(manifests) != 1:
        raise SystemExit(f"image-smoke: {oci} holds {len(manifests)} images, expected 1")

    def blob(descriptor: dict) -> Path:
        algorithm, digest = descriptor["digest"].split(":", 1)
        path = oci / "blobs" / algorithm / digest
        actual = hashlib.new(algorithm, path.read_bytes()).hexdigest()
        what = f"blob {descriptor['digest'][:19]}… matches its digest and size"
        if actual != digest or path.stat().st_size != descriptor["size"]:
            report.fail(what, f"sha {actual}, {path.stat().st_size} bytes, descriptor says {descriptor['size']}")
        else:
            report.ok(what, False)
        return path

    manifest = json.loads(blob(manifests[0]).read_text())
    config = json.loads(blob(manifest["config"]).read_text())
    layers = [blob(layer) for layer in manifest["layers"]]
    size = sum(layer["size"] for layer in manifest["layers"]) + manifest["config"]["size"]
    print(f"image: {len(layers)} layers, {size / 1e6:.1f} MB compressed (layers + config)")
    return config, layers


def unpack(layers: list[Path], rootfs: Path) -> None:
    if rootfs.exists():
        shutil.rmtree(rootfs)
    rootfs.mkdir(parents=True)
    for layer in layers:
        with tarfile.open(layer) as tar:
            names = tar.getnames()
        whiteouts = [n for n in names if os.path.basename(n).startswith(".wh.")]
        if whiteouts:
            raise SystemExit(f"image-smoke: layer {layer.name} has whiteouts {whiteouts[:5]}: not handled")
        subprocess.run(
            [tool("tar"), "--numeric-owner", "--same-permissions", "-xf", str(layer), "-C", str(rootfs)], check=True
        )
    print(f"rootfs: {rootfs} ({du(rootfs) / 1e6:.1f} MB unpacked)")


def du(path: Path) -> int:
    return sum(p.lstat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


# ------------------------------------------------------------ the chart


def render_cases() -> list[tuple[str, list[dict]]]:
    """Rendered objects for the default values and every charts/hibernator/ci/ file."""
    cases = [("default values", {})]
    for file in sorted((CHART / "ci").glob("*.yaml")):
        cases.append((str(file.relative_to(ROOT)), yaml.safe_load(file.read_text()) or {}))
    rendered = []
    with helm.Chart.load(str(CHART)) as chart:
        for origin, values in cases:
            manifests = chart.render(copy.deepcopy(values), name=RELEASE, namespace=NAMESPACE, is_install=True)
            objects = []
            for path in sorted(manifests):
                if path.endswith((".yaml", ".yml")):
                    objects.extend(load_yaml_docs(manifests[path]))
            rendered.append((origin, objects))
    return rendered


def containers(objects: list[dict]):
    for obj in objects:
        for spec in pod_specs(obj):
            for container in spec.get("containers", []) + spec.get("initContainers", []):
                yield obj, spec, container


# --------------------------------------------------------- static checks


def check_config(config: dict, cases: list[tuple[str, list[dict]]], report: Report, verbose: bool) -> dict:
    cfg = config.get("config", {})
    if cfg.get("Entrypoint") == ["/hibernator"] and not cfg.get("Cmd"):
        report.ok("image entrypoint is [/hibernator] with no Cmd", verbose)
    else:
        report.fail("image entrypoint", f"Entrypoint {cfg.get('Entrypoint')}, Cmd {cfg.get('Cmd')}")
    exposed = set(cfg.get("ExposedPorts") or {})
    labels = cfg.get("Labels") or {}
    missing = [label for label in REQUIRED_LABELS if not labels.get(label)]
    if missing:
        report.fail("image labels", f"missing {missing}")
    else:
        report.ok("image has the OCI labels", verbose)
    for origin, objects in cases:
        for obj, spec, container in containers(objects):
            where = f"{origin}: {obj['kind']}/{obj['metadata']['name']} container {container['name']}"
            pod_sc, sc = spec.get("securityContext", {}), container.get("securityContext", {})
            uid = sc.get("runAsUser", pod_sc.get("runAsUser"))
            gid = sc.get("runAsGroup", pod_sc.get("runAsGroup"))
            if cfg.get("User") == f"{uid}:{gid}":
                report.ok(f"{where}: runs as the image user {uid}:{gid}", verbose)
            else:
                report.fail(f"{where}: runs as the image user", f"chart {uid}:{gid}, image {cfg.get('User')}")
            for port in container.get("ports", []):
                key = f"{port['containerPort']}/{port.get('protocol', 'TCP').lower()}"
                if key in exposed:
                    report.ok(f"{where}: port {key} is exposed by the image", verbose)
                else:
                    report.fail(f"{where}: port {key} is exposed by the image", f"image exposes {sorted(exposed)}")
    return cfg


def check_rootfs(rootfs: Path, report: Report, verbose: bool) -> None:
    binary = rootfs / "hibernator"
    st = binary.lstat() if binary.is_file() and not binary.is_symlink() else None
    if st and st.st_mode & 0o111 and st.st_uid == 0 and not st.st_mode & 0o022:
        report.ok("/hibernator is an executable owned by root, not writable by others", verbose)
    else:
        report.fail("/hibernator", f"not a regular executable file owned by root and writable only by it: {st}")
    ca = rootfs / CA_BUNDLE
    count = ca.read_text(errors="replace").count("BEGIN CERTIFICATE") if ca.is_file() else 0
    if count >= 50:
        report.ok(f"/{CA_BUNDLE} holds {count} CA certificates", verbose)
    else:
        report.fail(f"/{CA_BUNDLE}", f"{count} certificates")
    passwd = (rootfs / "etc/passwd").read_text() if (rootfs / "etc/passwd").is_file() else ""
    if any(line.split(":")[2:4] == ["65532", "65532"] for line in passwd.splitlines() if line.count(":") >= 3):
        report.ok("/etc/passwd has the nonroot user 65532", verbose)
    else:
        report.fail("/etc/passwd", "no user 65532:65532")
    tmp = rootfs / "tmp"
    if tmp.is_dir() and (tmp.stat().st_mode & 0o7777) == 0o1777:
        report.ok("/tmp is 1777", verbose)
    else:
        report.fail("/tmp", "missing or not 1777")


# ------------------------------------------------- running in the image


def tmpfs_size(limit: str | None) -> str:
    """A Kubernetes quantity as a tmpfs size (64m when absent or unusual)."""
    for suffix, unit in (("Ki", "k"), ("Mi", "m"), ("Gi", "g")):
        if limit and limit.endswith(suffix) and limit[: -len(suffix)].isdigit():
            return limit[: -len(suffix)] + unit
    return "64m"


def pod_mounts(spec: dict, container: dict, objects: list[dict], scratch: Path) -> tuple[list[tuple], list[str]]:
    """(kind, path in the image, source, read-only) per volumeMount, parents
    first, and notes on mounts nothing rendered backs (left out, as in
    scripts/chart-check.py)."""
    files = materialize_volumes(spec, container, objects, scratch, rewrite=False)
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    mounts, notes = [], []
    for mount in container.get("volumeMounts", []):
        path = mount["mountPath"].rstrip("/")
        volume = volumes.get(mount["name"], {})
        read_only = bool(mount.get("readOnly"))
        if mount.get("subPath"):
            raise SystemExit(f"image-smoke: subPath mounts are not supported ({mount})")
        if "emptyDir" in volume:
            mounts.append(("tmpfs", path, tmpfs_size(volume["emptyDir"].get("sizeLimit")), read_only))
        elif path in files:
            mounts.append(("bind", path, files[path], read_only))
        else:
            notes.append(f"{path} (volume {mount['name']}) left out: nothing the chart renders backs it")
    return sorted(mounts, key=lambda m: m[1].count("/")), notes


def pod_command(rootfs: Path, mounts: list[tuple], argv: list[str]) -> list[str]:
    """unshare + sh: set up the pod's mounts on a read-only bind of the
    rootfs, then chroot into it as 65532 and exec the entrypoint."""
    q = shlex.quote
    mount, mkdir, touch = tool("mount"), tool("mkdir"), tool("touch")
    lines = [
        "set -eu",
        f"R={q(str(rootfs))}",
        f'{mount} --bind "$R" "$R"',
        # What every container gets from its runtime.
        f'{mkdir} -p "$R/proc" "$R/dev" "$R/etc"',
        f'{mount} -t proc -o nosuid,nodev,noexec proc "$R/proc"',
        f'{mount} -t tmpfs -o nosuid,mode=0755,size=1m tmpfs "$R/dev"',
        f'for d in null zero full random urandom; do {touch} "$R/dev/$d"; {mount} --bind "/dev/$d" "$R/dev/$d"; done',
    ]
    for name in ("hosts", "resolv.conf"):
        if Path("/etc", name).exists():
            lines.append(f'{touch} "$R/etc/{name}"; {mount} --bind /etc/{name} "$R/etc/{name}"')
    for kind, path, source, read_only in mounts:
        target = f'"$R"{q(path)}'
        lines.append(f"{mkdir} -p {target}")
        if kind == "tmpfs":
            lines.append(f"{mount} -t tmpfs -o nosuid,nodev,mode=0777,size={source} tmpfs {target}")
        else:
            lines.append(f"{mount} --bind {q(source)} {target}")
        if read_only:
            lines.append(f"{mount} -o remount,bind,ro {target}")
    lines += [
        f'{mount} -o remount,bind,ro "$R"',
        f'exec {tool("setpriv")} --no-new-privs {tool("chroot")} --userspec=65532:65532 --groups=65532 "$R" "$@"',
    ]
    script = "\n".join(lines)
    return [tool("unshare"), "--mount", "--propagation", "private", "/bin/sh", "-c", script, "sh", *argv]


def pod_env(cfg: dict, extra: dict[str, str]) -> dict[str, str]:
    env = dict(item.split("=", 1) for item in cfg.get("Env") or [] if "=" in item)
    env.setdefault("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    env.update({"HOSTNAME": "hibernator-smoke", "HOME": "/home/nonroot"})
    env.update(extra)
    return env


def run(
    rootfs: Path,
    mounts: list[tuple],
    argv: list[str],
    env: dict[str, str],
    what: str,
    report: Report,
    verbose: bool,
    json_out: bool = False,
):
    """Run argv in the image (pod_command); fail with the whole output on a non-zero exit."""
    started = time.monotonic()
    try:
        proc = subprocess.run(
            pod_command(rootfs, mounts, argv), env=env, capture_output=True, text=True, timeout=TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired as err:
        report.fail(what, f"timed out after {TIMEOUT}s\n{err.stdout or ''}{err.stderr or ''}")
        return None
    took = time.monotonic() - started
    problem = f"exit {proc.returncode}" if proc.returncode != 0 else ""
    if not problem and json_out:
        try:
            json.loads(proc.stdout)
        except ValueError as err:
            problem = f"stdout is not JSON ({err})"
    if problem:
        report.fail(
            what,
            f"{problem}\n     command: {shlex.join(argv)}\n     mounts: {mounts}\n"
            f"     stdout: {proc.stdout.strip() or '-'}\n     stderr: {proc.stderr.strip() or '-'}",
        )
        return None
    report.ok(f"{what} ({took:.2f}s)", verbose)
    return proc


def check_dry_runs(rootfs: Path, cfg: dict, cases, report: Report, verbose: bool) -> None:
    env = pod_env(cfg, {})
    proc = run(rootfs, [], ["/hibernator", "--version"], env, "/hibernator --version", report, verbose)
    if proc:
        print(f"in the image: {proc.stdout.strip()}")
    run(rootfs, [], ["/hibernator", "runner", "--help"], env, "/hibernator runner --help", report, verbose)
    for origin, objects in cases:
        for obj, spec, container in containers(objects):
            name = f"{obj['kind']}/{obj['metadata']['name']} container {container['name']}"
            what = f"{origin}: {name}: args --dry-run in the image"
            if container.get("command"):
                report.fail(what, "containers must use the image entrypoint (/hibernator), not `command`")
                continue
            extra = container_env(container, obj)
            if isinstance(extra, str):
                report.fail(what, extra)
                continue
            with tempfile.TemporaryDirectory(prefix="image-smoke-") as scratch:
                mounts, notes = pod_mounts(spec, container, objects, Path(scratch))
                for note in notes:
                    print(f"note {origin}: {container['name']}: {note}")
                argv = ["/hibernator", *map(str, container.get("args", [])), "--dry-run"]
                run(rootfs, mounts, argv, pod_env(cfg, extra), what, report, verbose, json_out=True)


# --------------------------------------------------- a served webhook


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def https(port: int, server_name: str, context: ssl.SSLContext, method: str, path: str, body: bytes = b""):
    """One HTTP/1.1 request over TLS to 127.0.0.1:port, verified for server_name."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname=server_name) as tls:
            head = (
                f"{method} {path} HTTP/1.1\r\nHost: {server_name}\r\nConnection: close\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
            )
            tls.sendall(head.encode() + body)
            data = b""
            while chunk := tls.recv(65536):
                data += chunk
    header, _, payload = data.partition(b"\r\n\r\n")
    lines = header.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    if any(line.lower().replace(" ", "") == "transfer-encoding:chunked" for line in lines[1:]):
        decoded = b""
        while payload:
            size_line, _, rest = payload.partition(b"\r\n")
            size = int(size_line.split(b";")[0], 16)
            if size == 0:
                break
            decoded, payload = decoded + rest[:size], rest[size + 2 :]
        payload = decoded
    return status, payload


def review(uid: str, obj: dict) -> bytes:
    group, version = obj["apiVersion"].split("/")
    return json.dumps(
        {
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "uid": uid,
                "kind": {"group": group, "version": version, "kind": obj["kind"]},
                "resource": {"group": group, "version": version, "resource": obj["kind"].lower() + "s"},
                "name": obj["metadata"]["name"],
                "namespace": obj["metadata"].get("namespace"),
                "operation": "CREATE",
                "userInfo": {"username": "image-smoke"},
                "object": obj,
                "dryRun": False,
            },
        }
    ).encode()


def check_served_webhook(rootfs: Path, cfg: dict, objects: list[dict], report: Report, verbose: bool) -> None:
    found = [
        (obj, spec, c) for obj, spec, c in containers(objects) if obj["kind"] == "Deployment" and c["name"] == "webhook"
    ]
    configs = [o for o in objects if o["kind"] == "ValidatingWebhookConfiguration"]
    if not found or not configs:
        report.fail("default values: a webhook container and ValidatingWebhookConfiguration", "not rendered")
        return
    obj, spec, container = found[0]
    service = configs[0]["webhooks"][0]["clientConfig"]["service"]
    server_name = f"{service['name']}.{service['namespace']}.svc"
    port = free_port()
    args = [a for a in map(str, container.get("args", [])) if not a.startswith("--port")] + [f"--port={port}"]
    cert_file = next(a.split("=", 1)[1] for a in args if a.startswith("--cert-file="))
    what = f"default values: webhook served from the image on :{port} for {server_name}"
    with tempfile.TemporaryDirectory(prefix="image-smoke-") as scratch:
        mounts, _ = pod_mounts(spec, container, objects, Path(scratch))
        cert_dir = next((m for m in mounts if m[1] == os.path.dirname(cert_file)), None)
        if cert_dir is None:
            report.fail(what, f"no rendered Secret mounted at {os.path.dirname(cert_file)}")
            return
        context = ssl.create_default_context(cafile=os.path.join(cert_dir[2], "ca.crt"))
        extra = container_env(container, obj)
        argv = pod_command(rootfs, mounts, ["/hibernator", *args])
        log = tempfile.TemporaryFile(mode="w+")
        env = pod_env(cfg, extra if isinstance(extra, dict) else {})
        proc = subprocess.Popen(argv, env=env, stdout=log, stderr=log)

        def output() -> str:
            log.seek(0)
            return log.read().strip() or "no output"

        try:
            deadline, status, body, error = time.monotonic() + 20, None, b"", None
            while time.monotonic() < deadline and proc.poll() is None:
                try:
                    status, body = https(port, server_name, context, "GET", "/healthz")
                    break
                except (OSError, ssl.SSLError) as err:
                    error = err
                    time.sleep(0.2)
            if status != 200 or body.strip() != b"ok":
                state = "running" if proc.poll() is None else f"exited {proc.returncode}"
                detail = f"status {status} {body!r}, last error {error}, {state}\n{output()}"
                report.fail(f"{what}: GET /healthz", detail)
                return
            report.ok(f"{what}: GET /healthz over verified TLS", verbose)

            examples = load_yaml_docs((ROOT / "examples/plans/demo.yaml").read_text())
            plan = next(o for o in examples if o["kind"] == "HibernatePlan")
            broken = copy.deepcopy(plan)  # a dependency on a target the plan does not have
            dependencies = broken["spec"]["execution"]["strategy"]["dependencies"]
            dependencies.append({"from": "app-nodes", "to": "no-such-target"})
            for uid, candidate, allowed in (("smoke-valid", plan, True), ("smoke-broken", broken, False)):
                status, body = https(port, server_name, context, "POST", "/validate", review(uid, candidate))
                try:
                    response = json.loads(body)["response"]
                except (ValueError, KeyError) as err:
                    report.fail(f"{what}: POST /validate {uid}", f"status {status}, {err}: {body[:500]!r}")
                    continue
                if status == 200 and response.get("uid") == uid and response.get("allowed") is allowed:
                    report.ok(f"{what}: POST /validate {uid} allowed={allowed}", verbose)
                else:
                    detail = f"status {status}, expected allowed={allowed}: {response}"
                    report.fail(f"{what}: POST /validate {uid}", detail)

            fields = dict(
                line.split(":", 1) for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines() if ":" in line
            )
            creds = {k: fields.get(k, "").split() for k in ("Uid", "Gid", "Groups", "CapEff", "CapPrm", "NoNewPrivs")}
            expect = {
                "Uid": ["65532"] * 4,
                "Gid": ["65532"] * 4,
                "Groups": ["65532"],
                "CapEff": ["0000000000000000"],
                "CapPrm": ["0000000000000000"],
                "NoNewPrivs": ["1"],
            }
            if creds == expect:
                report.ok(f"{what}: process runs as 65532:65532, no capabilities, no_new_privs", verbose)
            else:
                report.fail(f"{what}: process credentials", f"{creds}, expected {expect}")

            proc.send_signal(signal.SIGTERM)
            try:
                code = proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                report.fail(f"{what}: exits on SIGTERM", f"still running after 10s\n{output()}")
                return
            if code == 0:
                report.ok(f"{what}: exits 0 on SIGTERM", verbose)
            else:
                report.fail(f"{what}: exits 0 on SIGTERM", f"exit {code}\n{output()}")
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            if verbose:
                print(f"webhook output:\n{output()}")
            log.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--oci", type=Path, required=True, help="OCI image layout holding the image")
    parser.add_argument("--rootfs", type=Path, required=True, help="where to unpack it (replaced)")
    parser.add_argument("-v", "--verbose", action="store_true", help="print passing checks too")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("image-smoke: needs root (chroot and mount namespaces)")
    report = Report()
    config, layers = read_layout(args.oci, report)
    unpack(layers, args.rootfs.resolve())
    cases = render_cases()
    cfg = check_config(config, cases, report, args.verbose)
    check_rootfs(args.rootfs, report, args.verbose)
    check_dry_runs(args.rootfs.resolve(), cfg, cases, report, args.verbose)
    check_served_webhook(args.rootfs.resolve(), cfg, cases[0][1], report, args.verbose)
    print(f"image-smoke: {report.passed} passed, {len(report.failed)} failed")
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
