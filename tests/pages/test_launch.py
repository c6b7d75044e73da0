"""The launch page: preselection, validation naming the field, a run at once."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from app import ui
from app.services import runs
from app.ui import LAUNCH_PAGE
from tests.pages.support import open_page


def _submit(app: AppTest) -> AppTest:
    return app.button[-1].click().run()


def _launch_button(app: AppTest) -> None:
    assert app.button[-1].label == "Launch"


def test_gpu_from_the_address_is_preselected_with_its_tiers() -> None:
    app = open_page(LAUNCH_PAGE, gpu="rtx-4090-24gb")

    assert not app.exception and not app.error
    assert app.selectbox(key="launch_gpu").value == "rtx-4090-24gb"
    tier = app.radio(key="launch_tier_rtx-4090-24gb")
    assert tier.options == [
        "secure ($0.69/GPU-hour)",
        "community ($0.34/GPU-hour)",
    ]
    assert app.text_input[0].value == "mock-v0"
    assert app.number_input[0].value == 8
    assert "gemm:<fp32|fp16|bf16>:<size>" in app.text_input[0].help


def test_unknown_gpu_in_the_address_is_named_with_the_nearest_slugs() -> None:
    app = open_page(LAUNCH_PAGE, gpu="rtx-9999")

    assert app.warning[0].value == (
        "GPU type `rtx-9999` is not a catalog slug. Nearest: `rtx-4090-24gb`, "
        "`rtx-3090-24gb`; choose one below."
    )


def test_a_gpu_name_in_the_address_selects_its_only_match_and_says_so() -> None:
    app = open_page(LAUNCH_PAGE, gpu="RTX 4090")

    assert app.warning[0].value == (
        "GPU type `RTX 4090` is not a catalog slug: showing `rtx-4090-24gb`, the "
        "nearest one. Check it before launching."
    )
    assert app.selectbox(key="launch_gpu").value == "rtx-4090-24gb"


def test_a_gpu_in_the_address_with_no_match_says_so() -> None:
    app = open_page(LAUNCH_PAGE, gpu="zzzzzz")

    assert app.warning[0].value == (
        "GPU type `zzzzzz` is not in the catalog: choose one below."
    )


def test_launch_creates_the_run_at_once_and_links_to_it() -> None:
    app = open_page(LAUNCH_PAGE, gpu="rtx-4090-24gb")
    app.radio(key="launch_tier_rtx-4090-24gb").set_value("community")
    app.number_input(key="launch_seed").set_value(7)
    _launch_button(app)

    _submit(app)

    assert not app.exception and not app.error
    [run] = runs.list_runs()
    assert run.state == "queued"
    assert (run.gpu_type, run.cloud_tier, run.price_per_hour) == (
        "rtx-4090-24gb",
        "community",
        0.34,
    )
    # Only the parameters the user set are sent.
    assert run.parameters == {"seed": 7}
    assert app.success[0].value == f"Run `{run.id}` is queued on RTX 4090 (community)."
    link = app.get("page_link")[0]
    assert link.proto.page == "run"
    assert link.proto.query_string == f"id={run.id}"


def test_zero_samples_names_the_field_and_keeps_the_input() -> None:
    app = open_page(LAUNCH_PAGE)
    app.text_input[0].set_value("mock-v0")
    app.number_input[0].set_value(0)

    _submit(app)

    assert app.error[0].value == "**samples** — " + ui.escape(
        "samples must be a whole number from 1 to 100000, not 0."
    )
    assert app.number_input[0].value == 0
    assert runs.count_runs() == 0


def test_too_many_samples_names_the_field() -> None:
    app = open_page(LAUNCH_PAGE)
    app.number_input[0].set_value(100_001)

    _submit(app)

    assert app.error[0].value.startswith("**samples** — ")
    assert runs.count_runs() == 0


def test_unknown_model_ref_names_the_field_and_the_accepted_forms() -> None:
    app = open_page(LAUNCH_PAGE)
    app.text_input[0].set_value("llama-please")

    _submit(app)

    message = app.error[0].value
    assert message.startswith(
        "**model\\_ref** — " + ui.escape("Unknown model_ref 'llama-please'")
    )
    assert ui.escape("gemm:<fp32|fp16|bf16>:<size>") in message
    assert app.text_input[0].value == "llama-please"
    assert runs.count_runs() == 0


def test_parameter_out_of_range_names_the_parameter() -> None:
    app = open_page(LAUNCH_PAGE)
    app.number_input(key="launch_batch_size").set_value(5000)

    _submit(app)

    assert app.error[0].value.startswith(
        "**parameters\\.batch\\_size** — " + ui.escape("batch_size=5000")
    )
    assert runs.count_runs() == 0


def test_parameter_that_does_not_apply_names_it() -> None:
    app = open_page(LAUNCH_PAGE)
    app.selectbox(key="launch_dtype").select("bf16")

    _submit(app)

    assert app.error[0].value.startswith(
        "**parameters\\.dtype** — " + ui.escape("Parameter 'dtype'")
    )
    assert runs.count_runs() == 0
