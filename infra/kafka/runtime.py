"""The Kafka runtime: Java, and the broker's jars fetched once from Maven Central.

The jars are resolved by Maven from ``pom.xml`` beside this file and copied into a cache
directory keyed by the Kafka version, so a second ``renkei kafka up`` starts without Maven
or the network.
"""

from __future__ import annotations

import base64
import os
import re
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from renkei.errors import KafkaLaunchError, ToolMissingError

__all__ = ["POM", "KafkaRuntime", "default_cache_dir", "kafka_version", "random_cluster_id"]

POM = Path(__file__).with_name("pom.xml")


def kafka_version(pom: Path = POM) -> str:
    """The Kafka version pinned in the pom (one version for every org.apache.kafka jar)."""
    found = re.search(r"<kafka\.version>([^<]+)</kafka\.version>", pom.read_text())
    if found is None:
        raise KafkaLaunchError(f"{pom} does not pin <kafka.version>")
    return found.group(1)


def default_cache_dir() -> Path:
    """Where fetched jars live: ``$RENKEI_KAFKA_CACHE`` or ``~/.cache/renkei/kafka``."""
    env = os.environ.get("RENKEI_KAFKA_CACHE")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "renkei" / "kafka"


@dataclass(frozen=True)
class KafkaRuntime:
    """Java plus a directory of Kafka jars.

    :param cache_dir: parent of the per-version jar directories.
    :param java: the java executable; ``$JAVA_HOME/bin/java`` or ``java`` on PATH by default.
    """

    cache_dir: Path
    java: str

    @classmethod
    def locate(cls, cache_dir: Path | None = None) -> KafkaRuntime:
        """Find Java 17+ or raise a :class:`ToolMissingError` that says what to install."""
        java_home = os.environ.get("JAVA_HOME")
        candidate = Path(java_home, "bin", "java") if java_home else None
        java = str(candidate) if candidate and candidate.exists() else shutil.which("java")
        if java is None:
            raise ToolMissingError(
                "Java was not found: Kafka needs Java 17 or newer "
                "(install a JDK, e.g. `apt-get install openjdk-17-jre-headless`, or set JAVA_HOME)"
            )
        return cls(cache_dir=cache_dir or default_cache_dir(), java=java)

    @property
    def jar_dir(self) -> Path:
        """The jars of the pinned Kafka version."""
        return self.cache_dir / kafka_version() / "jars"

    @property
    def classpath(self) -> str:
        """A JVM classpath naming every cached jar."""
        return str(self.jar_dir / "*")

    def ensure_jars(self) -> Path:
        """Fetch the jars with Maven unless the cache already holds them; return their folder."""
        marker = self.jar_dir / ".complete"
        if marker.exists():
            return self.jar_dir
        mvn = shutil.which("mvn")
        if mvn is None:
            raise ToolMissingError(
                "Maven (mvn) was not found: it fetches the Kafka jars from Maven Central once "
                "(install it, e.g. `apt-get install maven`)"
            )
        staging = self.jar_dir.with_name("jars.partial")
        shutil.rmtree(staging, ignore_errors=True)
        command = [
            mvn, "-q", "-B", "-f", str(POM),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={staging}",
            "-DincludeScope=runtime",
        ]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
        if done.returncode != 0:
            tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
            raise KafkaLaunchError(f"Maven could not fetch the Kafka jars:\n{tail}")
        shutil.rmtree(self.jar_dir, ignore_errors=True)
        staging.rename(self.jar_dir)
        marker.touch()
        return self.jar_dir

    def run_tool(
        self,
        main_class: str,
        *args: str,
        secrets: Sequence[str] = (),
        timeout_s: float = 60,
    ) -> str:
        """Run a Kafka command-line tool from the cached jars and return its output.

        :param secrets: more arguments that hold passwords. Any local user can read a
            process's command line, so these go to java in a 0600 argument file
            (``java @file``) instead, and are masked in an error message.
        """
        with tempfile.TemporaryDirectory(prefix="renkei-tool-") as scratch:
            command = [self.java, "-cp", self.classpath, main_class, *args]
            if secrets:
                argfile = Path(scratch, "args")  # the folder is 0700, the file 0600
                fd = os.open(argfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w") as handle:
                    handle.write("\n".join(_quoted(a) for a in [main_class, *args, *secrets]))
                command = [self.java, "-cp", self.classpath, f"@{argfile}"]
            done = subprocess.run(  # noqa: S603
                command, capture_output=True, text=True, timeout=timeout_s, check=False
            )
        if done.returncode != 0:
            output = done.stderr.strip() or done.stdout
            for secret in secrets:
                output = output.replace(secret, "***")
            output = re.sub(r"password=[^,\]\s]*", "password=***", output)
            raise KafkaLaunchError(f"{main_class} failed:\n{output}")
        return done.stdout


def _quoted(argument: str) -> str:
    """One argument of a java @-file: double-quoted, with backslash and quote escaped."""
    return '"' + argument.replace("\\", "\\\\").replace('"', '\\"') + '"'


def random_cluster_id() -> str:
    """A cluster id as ``kafka-storage random-uuid`` makes one, without starting a JVM.

    Kafka's ``Uuid.randomUuid()``: 16 random bytes in URL-safe base64 without padding,
    never one that starts with "-" (it would read as an option) and never the reserved
    all-zero id or the metadata topic's id (…0001).
    """
    while True:
        raw = secrets.token_bytes(16)
        if int.from_bytes(raw) in (0, 1):
            continue
        text = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
        if not text.startswith("-"):
            return text
