"""`legion launch`'s YAML launch parser: arguments, substitutions, includes, groups, conditions, the
argv/env each process gets, and the errors that keep our files inside what ros2 launch also accepts.
Nothing here starts a process (tests/integration/test_launch_runner_processes.py does)."""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

import pytest
import yaml

from legion_core.tools.launch import description, environment, runner
from legion_core.tools.launch.description import parse_launch_file
from legion_core.tools.launch.environment import runtime_env
from legion_core.tools.launch.errors import LaunchError
from legion_core.tools.launch.substitutions import (
    Substitution,
    parse_substitutions,
    resolve_substitution,
    split_cmdline,
)

DATA = Path(__file__).resolve().parents[1] / "data" / "launch"
PREFIX = DATA / "prefix"
TALKER = str(PREFIX / "lib" / "fakepkg" / "talker")


def parse(name_or_path, args=None, **kw):
    path = name_or_path if isinstance(name_or_path, Path) else DATA / name_or_path
    kw.setdefault("install_dir", PREFIX)
    return parse_launch_file(path, args or {}, **kw)


def write(tmp_path: Path, body: str, name: str = "t.launch.yaml") -> Path:
    p = tmp_path / name
    p.write_text(body)
    return p


def error_of(tmp_path: Path, body: str, args=None) -> LaunchError:
    with pytest.raises(LaunchError) as ei:
        parse(write(tmp_path, body), args)
    return ei.value


# ------------------------------------------------------------------------------------------- nodes
def test_node_argv_is_what_ros2_launch_passes():
    d = parse("basic.launch.yaml")
    talker = d.process("talker")
    params_file = str(PREFIX / "share" / "fakepkg" / "config" / "params.yaml")
    assert talker.argv == [
        TALKER,
        "--exit-after",
        "1.0",
        "--code",
        "0",
        "--ros-args",
        "-r",
        "__node:=talker",
        "-r",
        "__ns:=/iiwa",
        "--params-file",
        params_file,
        "-p",
        "rate_hz:=10",
        "-p",
        "use_gripper:=true",
        "-p",
        "gains:=[1.0, 2.5]",
        "-p",
        "label:=hello world",
        "-p",
        'frame_id:="007"',
        "-p",
        "limits.max_vel:=1.5",
        "-r",
        "chatter:=/iiwa/joint_states",
    ]
    assert talker.kind == "node" and talker.package == "fakepkg" and talker.executable == "talker"
    assert talker.node_name == "talker" and talker.namespace == "/iiwa"
    assert talker.output == "screen" and talker.respawn is True and talker.respawn_delay == 0.5
    assert talker.remaps == [("chatter", "/iiwa/joint_states")]
    assert talker.params[0] == f"--params-file {params_file}"
    assert "basic.launch.yaml" in talker.source and "launch[6]/node" in talker.source


def test_process_environment_and_network_rule():
    d = parse("basic.launch.yaml")
    talker, hello = d.process("talker"), d.process("hello")
    assert talker.env["ROS_AUTOMATIC_DISCOVERY_RANGE"] == "LOCALHOST"
    assert hello.env["ROS_AUTOMATIC_DISCOVERY_RANGE"] == "LOCALHOST"
    assert (
        talker.env["LEGION_FIXTURE"] == "basic-sim" == hello.env["LEGION_FIXTURE"]
    )  # set_env: later actions
    assert talker.env["EXTRA"] == "1" and "EXTRA" not in hello.env  # node `env`: that process only
    assert talker.env_overrides == {"LEGION_FIXTURE": "basic-sim", "EXTRA": "1"}
    assert talker.env["AMENT_PREFIX_PATH"].split(os.pathsep)[0] == str(PREFIX)


def test_executable_cmd_is_split_like_ros2_launch():
    hello = parse("basic.launch.yaml").process("hello")
    assert hello.kind == "executable"
    assert Path(hello.argv[0]).name.startswith("python")
    assert hello.argv[1:] == ["-c", "print('hi there')"]
    assert hello.output == "log" and hello.respawn is False  # ros2 launch's defaults


def test_command_line_arguments_override_defaults_and_choices_are_enforced(tmp_path):
    d = parse("basic.launch.yaml", {"rate": "20", "robot_ns": "kuka", "mode": "real"})
    talker = d.process("talker")
    assert "rate_hz:=20" in talker.argv and "__ns:=/kuka" in talker.argv
    assert talker.env["LEGION_FIXTURE"] == "basic-real"
    assert d.arguments["rate"].value == "20" and d.arguments["rate"].source == "command line"
    assert (
        d.arguments["robot_ns"].default == "iiwa" and d.arguments["rate"].description == "publish rate in Hz"
    )
    assert d.messages == ["mode is real"]
    with pytest.raises(LaunchError, match=r"argument 'mode' is 'bogus', not one of \['sim', 'real'\]"):
        parse("basic.launch.yaml", {"mode": "bogus"})


def test_parameter_values_get_ros2_launch_types():
    d = parse("basic.launch.yaml", {"rate": "12.5"})
    assert "rate_hz:=12.5" in d.process("talker").params  # a substituted string is typed with YAML rules
    d = parse("basic.launch.yaml", {"rate": "fast"})
    assert "rate_hz:=fast" in d.process("talker").params
    # A string that YAML would read as a bool is quoted.
    assert description._format_param_value("true") == '"true"'
    assert description._format_param_value(["a", "b c"]) == "[a, b c]"
    assert description._format_param_value(float("inf")) == ".inf"
    assert description._format_param_value("") == '""'


def test_unknown_command_line_argument_lists_declared_ones():
    with pytest.raises(LaunchError) as ei:
        parse("basic.launch.yaml", {"rat": "5"})
    msg = str(ei.value)
    assert "unknown launch argument(s) rat" in msg and "declared arguments: mode, rate, robot_ns" in msg


def test_required_argument_missing_says_how_to_pass_it(tmp_path):
    e = error_of(tmp_path, "launch:\n  - arg: {name: robot_ip, description: the FRI address}\n")
    assert "argument 'robot_ip' is required" in str(e) and "robot_ip:=<value>" in str(e)
    assert e.file and e.file.endswith("t.launch.yaml") and e.entry == "launch[0]/arg" and e.key == "name"
    d = parse(write(tmp_path, "launch:\n  - arg: {name: robot_ip}\n"), {"robot_ip": "10.0.0.2"})
    assert d.arguments["robot_ip"].value == "10.0.0.2"


# ---------------------------------------------------------------------------------------- includes
def test_include_passes_args_finds_package_share_and_is_not_scoped():
    d = parse("include_outer.launch.yaml")
    assert [p.name for p in d.processes] == ["inner_talker", "pkg_talker", "after"]
    assert d.process("inner_talker").argv[1:3] == ["outer", "inner-default"]
    assert d.process("inner_talker").source.startswith(str(DATA / "include_inner.launch.yaml"))
    assert d.process("pkg_talker").namespace == "/iiwa"  # included through $(find-pkg-share fakepkg)
    assert d.process("after").argv[1] == "outer"  # the include's arg stays set, as in ros2 launch
    assert d.warnings == []  # $(dirname)/... is portable: no warning


def test_command_line_reaches_included_files_and_skipped_includes_still_declare():
    d = parse("include_outer.launch.yaml", {"robot": "kuka", "inner_only": "cli"})
    assert d.process("pkg_talker").namespace == "/kuka"
    assert d.process("inner_talker").argv[2] == "cli"
    # use_inner:=false skips the include, but `who` (declared in it) is still a known argument.
    d = parse("include_outer.launch.yaml", {"use_inner": "false", "who": "cli"})
    assert [p.name for p in d.processes] == ["pkg_talker", "after"]
    assert d.process("after").argv[1] == "cli"


def test_included_file_required_argument_must_come_from_the_include(tmp_path):
    write(tmp_path, "launch:\n  - arg: {name: who}\n", "inner.launch.yaml")
    outer = write(
        tmp_path, "launch:\n  - include: {file: $(dirname)/inner.launch.yaml}\n", "outer.launch.yaml"
    )
    with pytest.raises(LaunchError) as ei:
        parse(outer)
    assert "requires argument 'who'" in str(ei.value) and "include: arg:" in str(ei.value)
    assert ei.value.file == str(tmp_path / "inner.launch.yaml")


def test_relative_include_resolves_next_to_the_including_file_with_a_portability_warning(tmp_path):
    write(tmp_path, "launch:\n  - node: {pkg: fakepkg, exec: talker, name: inner}\n", "inner.launch.yaml")
    (tmp_path / "sub").mkdir()
    outer = write(tmp_path, "launch:\n  - include: {file: ../inner.launch.yaml}\n", "sub/outer.launch.yaml")
    d = parse(outer)
    assert [p.name for p in d.processes] == ["inner"]
    assert len(d.warnings) == 1 and "$(dirname)/../inner.launch.yaml" in d.warnings[0]


def test_include_cycle_is_an_error(tmp_path):
    write(tmp_path, "launch:\n  - include: {file: $(dirname)/b.launch.yaml}\n", "a.launch.yaml")
    write(tmp_path, "launch:\n  - include: {file: $(dirname)/a.launch.yaml}\n", "b.launch.yaml")
    with pytest.raises(LaunchError, match="include cycle"):
        parse(tmp_path / "a.launch.yaml")


# ------------------------------------------------------------------------------- groups, conditions
def test_groups_scope_configurations_namespaces_and_environment():
    d = parse("group.launch.yaml")
    assert [p.name for p in d.processes] == ["driver", "robot1/arm/driver", "pinned", "relative", "driver-2"]
    ns = {p.name: p.namespace for p in d.processes}
    assert ns == {
        "driver": "/robot1",
        "robot1/arm/driver": "/robot1/arm",
        "pinned": "/absolute",  # an absolute node namespace ignores pushed ones
        "relative": "/robot1/arm/sub",
        "driver-2": None,  # outside the groups: no namespace pushed
    }
    assert d.process("driver").argv[1] == "inner"
    assert d.process("driver").env["GROUP_ENV"] == "inside"
    outside = d.process("driver-2")
    assert outside.argv[1:3] == ["top", "yes"]  # `let` scoped by the group; `scoped: false` leaks
    assert "GROUP_ENV" not in outside.env and "__ns:=" not in " ".join(outside.argv)


def test_conditions():
    names = [p.name for p in parse("conditions.launch.yaml").processes]
    assert names == ["sim_only", "fast", "sim_no_camera"]
    names = [p.name for p in parse("conditions.launch.yaml", {"sim": "False", "rate": "2"}).processes]
    assert names == ["real_only", "driver"]
    d = parse("conditions.launch.yaml", {"sim": "0", "robot_ip": "10.0.0.9"})
    assert d.process("driver").argv[1] == "10.0.0.9"  # an arg in a group that is taken
    names = [p.name for p in parse("conditions.launch.yaml", {"camera": "TRUE", "sim": "1"}).processes]
    assert names == ["sim_only", "camera", "fast"]
    with pytest.raises(LaunchError) as ei:
        parse("conditions.launch.yaml", {"sim": "yes"})
    assert "expected true, false, 1 or 0" in str(ei.value) and ei.value.key == "if"


# ------------------------------------------------------------------------------------ substitutions
def test_substitution_grammar():
    Sub = Substitution
    assert parse_substitutions("plain 'quotes' stay") == ("plain 'quotes' stay",)
    assert parse_substitutions("a$(var x)b") == ("a", Sub("var", (("x",),)), "b")
    assert parse_substitutions("$(env HOME '/no home')") == (Sub("env", (("HOME",), ("/no home",))),)
    assert parse_substitutions("$(var $(var name))") == (Sub("var", ((Sub("var", (("name",),)),),)),)
    assert parse_substitutions(r"cost \$(var x) \\") == ("cost $(var x) \\",)
    assert parse_substitutions("$(dirname)/x") == (Sub("dirname", ()), "/x")
    for bad in ("$(var x", "$(", "$(var 'x)", "$(var a(b))"):
        with pytest.raises(LaunchError):
            parse_substitutions(bad)


def test_cmdline_split_keeps_substitution_results_whole():
    words = split_cmdline(parse_substitutions("--a $(var x) 'two words' pre$(var y)post --z"))
    assert [len(w) for w in words] == [1, 1, 1, 3, 1]
    assert words[0] == ("--a",) and words[2] == ("two words",) and words[4] == ("--z",)


def test_one_substitution_resolves_from_its_arguments(tmp_path):
    """substitutions.resolve_substitution: one `$(...)` whose arguments are already resolved, against the
    launch configurations, the environment and the launch file in scope; its errors carry no file (the
    evaluator adds file, entry and key)."""
    launch_file = tmp_path / "x.launch.yaml"
    configs = {"x": "3", "ros_namespace": "/ns"}
    env = runtime_env(PREFIX, base={"HOME": "/home/op", "PATH": os.environ.get("PATH", "")})

    def res(name: str, *args: str) -> str:
        return resolve_substitution(name, list(args), configs, env, launch_file)

    assert res("var", "x") == "3"
    assert res("env", "HOME") == "/home/op" and res("env", "LEGION_UNSET_X", "fallback") == "fallback"
    assert res("dirname") == str(tmp_path) and res("filename") == str(launch_file)
    assert res("find-pkg-prefix", "fakepkg") == str(PREFIX.resolve())
    assert res("find-pkg-share", "fakepkg") == str(PREFIX.resolve() / "share" / "fakepkg")
    assert res("eval", "2 * 3 + math.floor(0.5)") == "6"
    assert (
        res("not", "TRUE") == "false"
        and res("and", "1", "false") == "false"
        and res("or", "0", "1") == "true"
    )
    with pytest.raises(LaunchError, match=r"not defined here \(defined: x\)") as ei:
        res("var", "y")  # the pushed namespace is no launch argument
    assert ei.value.file is None and ei.value.entry == "" and ei.value.key == ""
    with pytest.raises(LaunchError, match=r"\$\(var\) takes 1 argument\(s\), got 2"):
        res("var", "x", "y")
    with pytest.raises(LaunchError, match="not set; set it, or give a default"):
        res("env", "LEGION_UNSET_X")
    with pytest.raises(LaunchError, match=r"failed: NameError"):
        res("eval", "open('/etc/passwd')")  # only harmless builtins
    with pytest.raises(LaunchError, match="unsupported substitution"):
        res("command", "ls")


def test_substitutions_evaluate(tmp_path, monkeypatch):
    body = """launch:
  - arg: {name: x, default: '3'}
  - let: {name: name, value: x}
  - node:
      pkg: fakepkg
      exec: talker
      args: >-
        $(var $(var name)) $(env LEGION_TEST_SET) $(env LEGION_TEST_UNSET 'fallback value')
        $(eval '$(var x) * 2') $(eval 'math.floor(2.7)') $(not true) $(or 0 $(var x)) $(and 1 False)
        $(find-pkg-prefix fakepkg) $(filename) $(dirname)
"""
    monkeypatch.setenv("LEGION_TEST_SET", "from-env")
    monkeypatch.delenv("LEGION_TEST_UNSET", raising=False)
    path = write(tmp_path, body.replace("$(or 0 $(var x))", "$(or 0 1)"))
    argv = parse(path).processes[0].argv
    assert argv[1:12] == [
        "3",
        "from-env",
        "fallback value",
        "6",
        "2",
        "false",
        "true",
        "false",
        str(PREFIX.resolve()),
        str(path.resolve()),
        str(tmp_path.resolve()),
    ]
    assert argv[12:] == ["--ros-args"]  # no name/namespace/params: only ros2 launch's own block


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("$(var nope)", "launch configuration 'nope' is not defined"),
        ("$(env LEGION_DEFINITELY_UNSET)", "environment variable LEGION_DEFINITELY_UNSET is not set"),
        ("$(find-pkg-share nopkg)", "package 'nopkg' not found"),
        ("$(command ls)", "unsupported substitution $(command"),
        ("$(eval '1/0')", "ZeroDivisionError"),
        ("$(eval 'open(\"/etc/passwd\")')", "NameError"),
        ("$(var)", "$(var) takes 1 argument(s)"),
        ("$(not maybe)", "expected true, false, 1 or 0"),
    ],
)
def test_substitution_errors_name_file_entry_and_key(tmp_path, text, needle):
    e = error_of(tmp_path, yaml.safe_dump({"launch": [{"log": {"message": text}}]}))
    assert needle in str(e)
    assert e.file == str(tmp_path / "t.launch.yaml") and e.entry == "launch[0]/log" and e.key == "message"


# ---------------------------------------------------------------------------- the supported subset
@pytest.mark.parametrize(
    ("body", "entry", "key", "needle"),
    [
        (
            "- node: {pkg: fakepkg, exec: talker, colour: red}",
            "launch[0]/node",
            "colour",
            "unknown key for `node`",
        ),
        (
            "- executable: {cmd: ls, args: -l}",
            "launch[0]/executable",
            "args",
            "append the arguments to `cmd`",
        ),
        ("- arg: {name: x, default: 5}", "launch[0]/arg", "default", "quote it"),
        ("- node: {pkg: fakepkg, exec: talker, if: true}", "launch[0]/node", "if", "quote it"),
        (
            "- node: {pkg: fakepkg, exec: talker, respawn_delay: 1}",
            "launch[0]/node",
            "respawn_delay",
            "write 1.0",
        ),
        (
            "- node: {pkg: fakepkg, exec: talker, on_exit: restart}",
            "launch[0]/node",
            "on_exit",
            "on_exit: shutdown",
        ),
        (
            "- node: {pkg: fakepkg, exec: talker, if: 'true', unless: 'true'}",
            "launch[0]/node",
            "unless",
            "exclusive",
        ),
        (
            "- node: {pkg: fakepkg, exec: talker, output: loud}",
            "launch[0]/node",
            "output",
            "screen, log, both",
        ),
        (
            "- node: {pkg: fakepkg, exec: nope}",
            "launch[0]/node",
            "exec",
            "executables there: param_probe, talker",
        ),
        ("- node: {pkg: nopkg, exec: talker}", "launch[0]/node", "pkg", "package 'nopkg' not found"),
        ("- node: {pkg: fakepkg, exec: talker, name: 2fast}", "launch[0]/node", "name", "invalid node name"),
        (
            "- node: {pkg: fakepkg, exec: talker, namespace: 'a b'}",
            "launch[0]/node",
            "namespace",
            "namespace",
        ),
        (
            "- node: {pkg: fakepkg, exec: talker, param: [{from: /no/such.yaml}]}",
            "launch[0]/node/param[0]",
            "from",
            "does not exist",
        ),
        (
            "- node: {pkg: fakepkg, exec: talker, param: [{name: a}]}",
            "launch[0]/node/param[0]",
            "value",
            "needs `value:`",
        ),
        (
            "- node: {pkg: fakepkg, exec: talker, param: [{name: a, value: []}]}",
            "launch[0]/node/param[0]",
            "value",
            "empty list",
        ),
        (
            "- node: {pkg: fakepkg, exec: talker, param: [{name: a, value: [1, x]}]}",
            "launch[0]/node/param[0]",
            "value",
            "mixes types",
        ),
        (
            "- node: {pkg: fakepkg, exec: talker, param: [{name: a, value: x, type: double}]}",
            "launch[0]/node/param[0]",
            "type",
            "unknown parameter type",
        ),
        (
            "- node: {pkg: fakepkg, exec: talker, remap: [{from: a}]}",
            "launch[0]/node/remap[0]",
            "to",
            "needs `to`",
        ),
        ("- group: {scoped: 'false', children: []}", "launch[0]/group", "scoped", "YAML boolean"),
        (
            "- group: {push-ros-namespace: ns, children: []}",
            "launch[0]/group",
            "push-ros-namespace",
            "first child",
        ),
        ("- group: {forwarding: false, children: []}", "launch[0]/group", "forwarding", "not supported"),
        (
            "- set_env: {name: ROS_AUTOMATIC_DISCOVERY_RANGE, value: SUBNET}",
            "launch[0]/set_env",
            "name",
            "NETWORK RULE",
        ),
        (
            "- node: {pkg: fakepkg, exec: talker, env: [{name: ROS_STATIC_PEERS, value: 10.0.0.1}]}",
            "launch[0]/node",
            "name",
            "NETWORK RULE",
        ),
        ("- include: {file: $(dirname)/none.launch.yaml}", "launch[0]/include", "file", "does not exist"),
        ("- executable: {cmd: legion-no-such-program}", "launch[0]/executable", "cmd", "not found"),
        ("- group:\n    - timer: {period: 1.0}", "launch[0]/group[0]", "", "unsupported action `timer`"),
    ],
)
def test_outside_the_subset_fails_loudly_naming_file_entry_and_key(tmp_path, body, entry, key, needle):
    e = error_of(tmp_path, "launch:\n  " + body + "\n")
    assert needle in str(e), str(e)
    assert e.file == str(tmp_path / "t.launch.yaml")
    assert e.entry == entry and e.key == key, str(e)


@pytest.mark.parametrize(
    "body",
    [
        "nodes: []",
        "launch: {node: {}}",
        "- node: {}",
        "launch:\n  - {node: {exec: a}, arg: {name: b}}",
        "launch: [1, 2",
    ],
)
def test_not_a_launch_file(tmp_path, body):
    e = error_of(tmp_path, body)
    assert e.file == str(tmp_path / "t.launch.yaml")


def test_unknown_keys_are_rejected_even_behind_a_false_condition(tmp_path):
    body = "launch:\n  - group:\n      if: 'false'\n      children:\n        - node: {pkg: x, exec: y, colour: red}\n"
    assert error_of(tmp_path, body).key == "colour"


def test_respawn_is_a_string_with_substitutions(tmp_path):
    body = """launch:
  - arg: {name: r, default: 'false'}
  - node: {pkg: fakepkg, exec: talker, name: a, respawn: 'True', respawn_max_retries: 3, on_exit: shutdown}
  - node: {pkg: fakepkg, exec: talker, name: b, respawn: $(var r), sigterm_timeout: 1.5}
"""
    d = parse(write(tmp_path, body))
    a, b = d.process("a"), d.process("b")
    assert a.respawn is True and a.respawn_max_retries == 3 and a.required is True
    assert b.respawn is False and b.sigterm_timeout == 1.5 and b.respawn_max_retries == -1
    assert parse(write(tmp_path, body), {"r": "true"}).process("b").respawn is True
    e = error_of(tmp_path, "launch:\n  - node: {pkg: fakepkg, exec: talker, respawn: true}\n")
    assert e.key == "respawn" and "respawn: 'true'" in str(e)


def test_relative_parameter_file_warns_and_resolves_next_to_the_launch_file(tmp_path):
    (tmp_path / "p.yaml").write_text("/**:\n  ros__parameters: {a: 1}\n")
    d = parse(write(tmp_path, "launch:\n  - node: {pkg: fakepkg, exec: talker, param: [{from: p.yaml}]}\n"))
    assert d.processes[0].argv[-2:] == ["--params-file", str((tmp_path / "p.yaml").resolve())]
    assert "$(dirname)/p.yaml" in d.warnings[0]


def test_unbuilt_workspace_can_still_be_described(tmp_path):
    body = "launch:\n  - node: {pkg: fakepkg, exec: not_built_yet, name: n}\n"
    d = parse(write(tmp_path, body), check_executables=False)
    assert d.processes[0].argv[0] == "<fakepkg/lib/not_built_yet>"


# ------------------------------------------------------------------------------------- environment
def test_runtime_env_sources_the_workspace_and_forces_localhost(tmp_path):
    install = tmp_path / "install"
    (install / "lib" / "python3.11" / "site-packages").mkdir(parents=True)
    base = {
        "PATH": "/usr/bin",
        "PYTHONPATH": "/old",
        "AMENT_PREFIX_PATH": "/opt/ros/jazzy",
        "ROS_AUTOMATIC_DISCOVERY_RANGE": "SUBNET",
        "ROS_STATIC_PEERS": "192.168.0.2",
        "ROS_DOMAIN_ID": "42",
    }
    env = runtime_env(install, base=base)
    site = str(install / "lib" / "python3.11" / "site-packages")
    assert env["PYTHONPATH"] == f"{site}{os.pathsep}/old"
    assert env["LD_LIBRARY_PATH"] == str(install / "lib")
    prefixes = env["AMENT_PREFIX_PATH"].split(os.pathsep)
    assert prefixes[0] == str(install) and prefixes[-1] == "/opt/ros/jazzy"
    if sys.prefix != sys.base_prefix:  # running from the venv
        assert prefixes[1] == sys.prefix and env["PATH"].split(os.pathsep)[0] == str(Path(sys.prefix) / "bin")
    assert env["ROS_AUTOMATIC_DISCOVERY_RANGE"] == "LOCALHOST" and "ROS_STATIC_PEERS" not in env
    assert env["ROS_DOMAIN_ID"] == "42" and env["PYTHONUNBUFFERED"] == "1"
    with pytest.raises(LaunchError, match="does not exist"):
        runtime_env(tmp_path / "missing")


def test_ament_lookups():
    env = runtime_env(PREFIX)
    assert environment.find_package_prefix("fakepkg", env) == PREFIX.resolve()
    assert (
        environment.find_node_executable("fakepkg", "talker", env)
        == PREFIX.resolve() / "lib" / "fakepkg" / "talker"
    )


# ------------------------------------------------------------------------------ describe and the CLI
def test_describe_shows_argv_params_remaps_and_env_diff():
    d = parse("basic.launch.yaml")
    text = d.describe(reference_env={"PATH": os.environ.get("PATH", ""), "EXTRA": "0"})
    assert "[talker] node fakepkg/talker  output=screen respawn (delay 0.5 s)" in text
    assert shlex.join(d.process("talker").argv) in text
    assert "    param: rate_hz:=10" in text and "    remap: chatter -> /iiwa/joint_states" in text
    assert "env: +ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST" in text and "env: ~EXTRA=1" in text
    assert "log: mode is sim" in text
    as_dict = d.to_dict()
    assert as_dict["processes"][0]["argv"] == d.process("talker").argv
    assert as_dict["arguments"]["rate"]["value"] == "10"


def test_cli_dry_run_accepts_options_anywhere(capsys):
    rc = runner.main(
        [str(DATA / "basic.launch.yaml"), "rate:=30", "--install-dir", str(PREFIX), "--dry-run", "mode:=real"]
    )
    out = capsys.readouterr().out
    assert rc == 0 and "rate_hz:=30" in out and "rate     = '30' (command line)" in out


def test_cli_wired_as_a_subcommand(capsys):
    import argparse

    top = argparse.ArgumentParser(prog="legion")
    sub = top.add_subparsers(dest="cmd")
    runner.add_arguments(sub.add_parser("launch"))
    args = top.parse_args(
        [
            "launch",
            str(DATA / "conditions.launch.yaml"),
            "sim:=false",
            "--dry-run",
            "--install-dir",
            str(PREFIX),
        ]
    )
    assert runner.run_from_args(args) == 0
    assert "[real_only]" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["basic.launch.yaml", "rate=5"], "name:=value"),
        (["basic.launch.yaml", "--bogus"], "unknown option(s) --bogus"),
        (["basic.launch.yaml", "nope:=1"], "unknown launch argument(s) nope"),
        (["missing.launch.yaml"], "launch file not found"),
    ],
)
def test_cli_errors_exit_2_with_a_message(capsys, argv, needle):
    rc = runner.main([str(DATA / argv[0]), *argv[1:], "--install-dir", str(PREFIX), "--dry-run"])
    assert rc == 2 and needle in capsys.readouterr().err
