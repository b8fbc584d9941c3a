"""A real Puppet server for the boot lab: Debian's ``puppetserver``, private to one run.

Everything lives under one work directory (configuration, CA, code, logs), so
the host's ``/etc/puppet`` is never read or changed. The server listens on
127.0.0.1 only; the guest reaches it through a ``guestfwd`` rule. Signing is
policy-based: ``autosign`` names a script that signs a CSR only when its
challengePassword attribute equals the token the test gave, so a guest with
the wrong token gets no certificate. The catalog is one ``site.pp`` the test
writes.

The JVM takes one to two minutes to start on a small busy machine (measured
in ``startup_seconds``), so a boot test launches it (:meth:`PuppetServer.launch`) and
boots its guests meanwhile; a run starts the server once.
"""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

SERVER_JAR = Path("/usr/share/puppetserver/puppetserver.jar")
PACKAGED_CONF = Path("/etc/puppet/puppetserver")
CERTNAME = "puppet"
START_TIMEOUT = 900.0
HEAP = "512m"

_AUTOSIGN = """#!/bin/sh
# Policy-based autosigning: $1 is the certname, the CSR (PEM) is on stdin.
# Sign only when the CSR's challengePassword is the lab token.
csr=$(cat)
printf '%s\\n' "$csr" | openssl req -noout -text 2>/dev/null \\
  | grep -A0 -i 'challengePassword' | grep -qF ':{token}' || exit 1
echo "signed $1" >> "{signed_log}"
exit 0
"""

_LOGBACK = """<configuration scan="false">
  <appender name="F" class="ch.qos.logback.core.FileAppender">
    <file>{log}</file>
    <encoder><pattern>%d %-5p [%c{{2}}] %m%n</pattern></encoder>
  </appender>
  <logger name="org.eclipse.jetty" level="WARN"/>
  <root level="info"><appender-ref ref="F"/></root>
</configuration>
"""


class PuppetServerError(RuntimeError):
    """The server could not be set up or did not come up in time; the log tail says why."""


def available() -> str | None:
    """None when the server can run here, else why not."""
    if not SERVER_JAR.is_file():
        return f"{SERVER_JAR} missing: Debian's puppetserver package is not installed"
    for tool in ("java", "openssl", "puppetserver"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class PuppetServer:
    """One server under ``workdir``; ``start()`` returns once it answers."""

    workdir: Path
    token: str
    site_pp: str
    port: int = 0
    startup_seconds: float = 0.0
    _process: subprocess.Popen[bytes] | None = None
    _started: float = 0.0

    @property
    def confdir(self) -> Path:
        return self.workdir / "puppet"

    @property
    def log(self) -> Path:
        return self.workdir / "log" / "puppetserver.log"

    @property
    def signed_log(self) -> Path:
        return self.workdir / "signed.log"

    @property
    def ca_cert(self) -> Path:
        return self.workdir / "ssl" / "ca" / "ca_crt.pem"

    def signed(self) -> list[str]:
        """The certnames the autosign policy signed, in order."""
        if not self.signed_log.is_file():
            return []
        return [line.split(" ", 1)[1] for line in self.signed_log.read_text().splitlines()
                if line.startswith("signed ")]

    def start(self) -> PuppetServer:
        """Launch the server and return once it answers (see :meth:`launch`)."""
        self.launch()
        self.wait_ready()
        return self

    def launch(self) -> PuppetServer:
        """Set up the CA and start the JVM without waiting for it: a boot test starts its
        guests meanwhile (the guest's agent runs minutes later) and calls
        :meth:`wait_ready` before it looks at the result."""
        why = available()
        if why:
            raise PuppetServerError(why)
        self.port = self.port or _free_port()
        self._write_config()
        self._setup_ca()
        self._started = time.monotonic()
        with open(self.workdir / "log" / "stdout.log", "ab") as out:
            self._process = subprocess.Popen(
                ["java", f"-Xms{HEAP}", f"-Xmx{HEAP}", "-Djruby.lib=/usr/share/jruby/lib",
                 "-XX:+CrashOnOutOfMemoryError", "-jar", str(SERVER_JAR),
                 "--config", str(self.workdir / "conf.d"),
                 "--bootstrap-config", str(self.workdir / "services.d")],
                cwd="/usr/share/puppetserver", stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def wait_ready(self) -> None:
        """Return once the server answers; stop it and raise if it cannot."""
        if self.startup_seconds:
            return
        try:
            self._wait_ready(self._started)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - self._started

    def stop(self) -> None:
        if self._process is None:
            return
        try:
            os.killpg(self._process.pid, 15)
            self._process.wait(timeout=60)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(self._process.pid, 9)
            except ProcessLookupError:
                pass
            self._process.wait(timeout=30)
        self._process = None

    def tail(self, lines: int = 15) -> str:
        texts = []
        for path in (self.log, self.workdir / "log" / "stdout.log"):
            if path.is_file():
                texts += path.read_text(errors="replace").splitlines()[-lines:]
        return "\n".join(texts)

    def _wait_ready(self, started: float) -> None:
        context = ssl.create_default_context(cafile=str(self.ca_cert))
        context.check_hostname = False
        url = f"https://127.0.0.1:{self.port}/status/v1/simple"
        while time.monotonic() - started < START_TIMEOUT:
            assert self._process is not None
            if self._process.poll() is not None:
                raise PuppetServerError(f"puppetserver exited {self._process.returncode}:\n"
                                        + self.tail())
            try:
                with urllib.request.urlopen(url, context=context, timeout=10) as reply:
                    if reply.read().strip() == b"running":
                        return
            except OSError:
                pass
            time.sleep(2)
        raise PuppetServerError(f"puppetserver did not answer within {START_TIMEOUT:.0f} s:\n"
                                + self.tail())

    def _write_config(self) -> None:
        root = self.workdir
        for sub in ("puppet", "code/environments/production/manifests", "var", "run", "log",
                    "ssl", "conf.d", "services.d"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        (root / "code/environments/production/manifests/site.pp").write_text(self.site_pp)
        autosign = root / "autosign.sh"
        autosign.write_text(_AUTOSIGN.replace("{token}", self.token)
                            .replace("{signed_log}", str(self.signed_log)))
        autosign.chmod(0o700)
        (root / "puppet" / "puppet.conf").write_text(
            "[main]\n"
            f"vardir = {root}/var\n"
            f"ssldir = {root}/ssl\n"
            f"logdir = {root}/log\n"
            f"rundir = {root}/run\n"
            f"certname = {CERTNAME}\n"
            "[server]\n"
            f"cadir = {root}/ssl/ca\n"
            f"autosign = {autosign}\n"
            f"dns_alt_names = {CERTNAME},{CERTNAME}.lab,localhost\n")
        (root / "logback.xml").write_text(_LOGBACK.format(log=self.log))
        conf = root / "conf.d"
        shutil.copy2(PACKAGED_CONF / "conf.d" / "auth.conf", conf / "auth.conf")
        shutil.copy2(PACKAGED_CONF / "conf.d" / "ca.conf", conf / "ca.conf")
        shutil.copy2(PACKAGED_CONF / "conf.d" / "web-routes.conf", conf / "web-routes.conf")
        (conf / "global.conf").write_text(f'global: {{ logging-config: "{root}/logback.xml" }}\n')
        (conf / "metrics.conf").write_text("metrics: { server-id: lab }\n")
        (conf / "webserver.conf").write_text(
            "webserver: {\n  client-auth: want\n  ssl-host: 127.0.0.1\n"
            f"  ssl-port: {self.port}\n}}\n")
        (conf / "puppetserver.conf").write_text(
            "jruby-puppet: {\n"
            "  ruby-load-path: [/usr/lib/puppetserver/ruby/vendor_ruby]\n"
            f"  gem-home: {root}/var/jruby-gems\n"
            "  gem-path: [${jruby-puppet.gem-home},"
            " \"/usr/lib/puppetserver/vendored-jruby-gems\"]\n"
            f"  server-conf-dir: {root}/puppet\n"
            f"  server-code-dir: {root}/code\n"
            f"  server-var-dir: {root}/var\n"
            f"  server-run-dir: {root}/run\n"
            f"  server-log-dir: {root}/log\n"
            "  max-active-instances: 1\n"
            "}\nhttp-client: {}\nprofiler: {}\n")
        for cfg in (PACKAGED_CONF / "services.d").glob("*.cfg"):
            shutil.copy2(cfg, root / "services.d" / cfg.name)

    def _setup_ca(self) -> None:
        if self.ca_cert.is_file():
            return
        run = subprocess.run(
            ["puppetserver", "ca", "setup", "--config", str(self.confdir / "puppet.conf"),
             "--certname", CERTNAME,
             "--subject-alt-names", f"{CERTNAME},{CERTNAME}.lab,localhost"],
            capture_output=True, text=True, timeout=300, check=False)
        if run.returncode != 0 or not self.ca_cert.is_file():
            raise PuppetServerError("puppetserver ca setup failed: "
                                    + (run.stderr or run.stdout).strip()[-600:])
