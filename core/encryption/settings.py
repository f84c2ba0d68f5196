"""Which key provider a deployment uses: the ``[keys]`` table of qiao.toml.

``qiao init`` writes ``[keys] provider = "file", file = "qiao-kek.json"``; the file
is relative to the deployment folder. ``provider = "env"`` takes the KEK from
``QIAO_KEK`` and is for development only (docs/encryption.md). ``provider =
"pkcs11"`` keeps the KEK inside a hardware security module
(:mod:`qiao.core.crypto.hsm`). ``QIAO_KEY_FILE`` overrides the file, so
containers can mount it anywhere. Without a ``[keys]`` table and without
``QIAO_KEY_FILE`` there is no provider, and encrypted fields stop with a
:class:`~qiao.core.errors.ConfigurationError`.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from qiao.core.crypto import CryptoError, EnvKeyProvider, FileKeyProvider, KeyProvider
from qiao.core.crypto.hsm import make_provider
from qiao.core.errors import ConfigurationError

KEY_FILE_ENV = "QIAO_KEY_FILE"
PROVIDERS = ("file", "env", "pkcs11")

ProviderFactory = Callable[[], KeyProvider | None]


class Config(Protocol):
    """Where qiao.toml is: all of :class:`qiao.core.config.Config` the ``[keys]`` table needs.

    Named here rather than imported, because the configuration (which holds the
    audit settings) sits above encryption in the core's layers.
    """

    @property
    def root(self) -> Path: ...

    @property
    def path(self) -> Path | None: ...


class Plugins(Protocol):
    """The key providers plugins offer, as :class:`qiao.core.pluginmanager.Plugins` gives them."""

    def key_providers(self) -> Mapping[str, Callable[[Mapping[str, object]], KeyProvider]]: ...


@dataclass(frozen=True)
class KeySettings:
    """The ``[keys]`` table: a provider name and, for ``file``, the key file's path."""

    provider: str | None = None
    file: Path | None = None
    #: The whole ``[keys]`` table, handed to a plugin's provider factory.
    options: Mapping[str, object] = field(default_factory=dict)

    @classmethod
    def of(
        cls,
        config: Config,
        env: Mapping[str, str] | None = None,
        plugin_providers: Iterable[str] = (),
    ) -> KeySettings:
        env = os.environ if env is None else env
        table: dict[str, object] = {}
        if config.path is not None:
            try:
                data = tomllib.loads(config.path.read_text(encoding="utf-8"))
            except (OSError, tomllib.TOMLDecodeError) as exc:
                raise ConfigurationError(f"{config.path}: {exc}") from None
            table = data.get("keys", {})
            if not isinstance(table, dict):
                raise ConfigurationError(f"{config.path}: [keys] must be a table")
        provider = table.get("provider", "file" if "file" in table else None)
        file = table.get("file")
        if env.get(KEY_FILE_ENV):
            provider, file = "file", env[KEY_FILE_ENV]
        known = (*PROVIDERS, *plugin_providers)
        if provider is not None and provider not in known:
            raise ConfigurationError(
                f"[keys] provider {provider!r} is unknown; use one of {', '.join(known)} "
                "(other providers come from plugins: docs/encryption.md)"
            )
        if provider == "file" and not file:
            raise ConfigurationError('[keys] provider = "file" needs file = "<path>"')
        path = (config.root / str(file)).resolve() if file else None
        return cls(provider=str(provider) if provider else None, file=path, options=dict(table))

    def make_provider(self, plugins: Plugins | None = None) -> KeyProvider | None:
        """The configured provider; a missing or unsafe key is a ConfigurationError."""
        try:
            if self.provider == "file":
                assert self.file is not None
                return FileKeyProvider(self.file)
            if self.provider == "env":
                return EnvKeyProvider()
            if self.provider == "pkcs11":
                return _pkcs11_provider(self.options)
            if self.provider is not None and plugins is not None:
                return plugins.key_providers()[self.provider](self.options)
        except CryptoError as exc:
            raise ConfigurationError(str(exc)) from None
        return None


def _pkcs11_provider(options: Mapping[str, object]) -> KeyProvider:
    """The HSM's provider; :mod:`qiao.core.crypto.hsm` imports python-pkcs11 only when used."""
    try:
        return make_provider(options)
    except ModuleNotFoundError:
        raise ConfigurationError(
            '[keys] provider = "pkcs11" needs python-pkcs11: pip install "qiao-crm[hsm]"'
        ) from None


def provider_factory(config: Config, plugins: Plugins | None = None) -> ProviderFactory:
    """A factory for ``config``'s key provider, read when encryption is first needed."""

    def make() -> KeyProvider | None:
        offered = plugins.key_providers() if plugins is not None else {}
        return KeySettings.of(config, plugin_providers=offered).make_provider(plugins)

    return make
