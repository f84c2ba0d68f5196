"""Rendering the cookiecutter scaffolds of templates_market/scaffolds.

Three scaffolds ship with Qiao: ``deployment`` (what ``qiao init`` writes),
``plugin`` and ``template`` (``qiao plugin new``, ``qiao template new``: a
package that installs with pip and whose tests pass at once). They are plain
cookiecutter templates, so ``cookiecutter`` itself can render them too; here
they are rendered without prompts and without cookiecutter's replay files in
the user's home folder.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import click

from qiao.core.errors import ConfigurationError
from qiao.core.metadata.model import check_name
from qiao.core.pluginmanager import available_plugins

#: A plugin's sample entity is ``<name>_item``, and entity names have at most 48 characters.
MAX_PLUGIN_NAME = 40


def scaffold_dir(name: str) -> Path:
    return Path(str(resources.files("qiao.templates_market") / "scaffolds" / name))


def render(scaffold: str, values: dict[str, Any], output_dir: Path) -> Path:
    """Render ``scaffold`` with ``values`` into ``output_dir``; returns the folder made."""
    # cookiecutter (and Jinja) load here, not with the module: commands that render
    # nothing, ``qiao serve`` among them, skip them.
    from cookiecutter.generate import generate_context, generate_files
    from cookiecutter.prompt import prompt_for_config

    template = scaffold_dir(scaffold)
    context = generate_context(str(template / "cookiecutter.json"), extra_context=values)
    context["cookiecutter"] = prompt_for_config(context, no_input=True)
    context["cookiecutter"]["_template"] = str(template)
    return Path(generate_files(template, context, output_dir=output_dir))


def _check_new_name(name: str) -> None:
    try:
        check_name(name, "plugin")
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from None
    if len(name) > MAX_PLUGIN_NAME:
        raise ConfigurationError(f"plugin name {name!r} is longer than {MAX_PLUGIN_NAME}")
    if name in available_plugins():
        raise ConfigurationError(f"a plugin named {name!r} is installed already; choose another")


def _new(scaffold: str, name: str, directory: Path) -> None:
    _check_new_name(name)
    target = directory / f"qiao-{name.replace('_', '-')}"
    if target.exists():
        raise ConfigurationError(f"{target} exists already; choose another name or folder")
    directory.mkdir(parents=True, exist_ok=True)
    made = render(scaffold, {"name": name}, directory)
    click.echo(f"Created {made}")
    click.echo("Next:")
    click.echo(f"  cd {made} && pip install -e .   # registers the plugin '{name}'")
    click.echo("  pytest                           # its tests, on SQLite and PostgreSQL")


_directory = click.option(
    "--directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(),
    show_default=True,
    help="Folder to create the package in.",
)


@click.command("new")
@click.argument("name")
@_directory
def plugin_new(name: str, directory: Path) -> None:
    """Create a plugin package NAME (qiao-NAME/) with an entity, a hook and tests."""
    _new("plugin", name, directory)


@click.command("new")
@click.argument("name")
@_directory
def template_new(name: str, directory: Path) -> None:
    """Create a template package NAME (qiao-NAME/): manifest, entities, demo data, tests."""
    _new("template", name, directory)
