"""A trial's trained model, downloaded as a model file (``simulator.load_analog_model`` reads it)."""

from __future__ import annotations

import os
import tempfile
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from api import engine
from api.deps import ReadAccess, StoreDep
from api.model_store import model_store_dir
from api.schemas import MAX_INT, Problem
from api.store.convert import to_record

router = APIRouter(tags=["trials"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "Missing or unknown bearer token"},
    404: {"model": Problem, "description": "No such study or trial, or the trial has no stored model"},
    422: {"model": Problem, "description": "Invalid path or query parameter; `errors[].path` names it"},
}


@router.get(
    "/studies/{study_id}/trials/{number}/model",
    summary="Download a trial's trained model",
    response_class=FileResponse,
    responses={
        **_ERRORS,
        200: {
            "content": {"application/octet-stream": {}},
            "description": "The model file: the trial's training on its evaluation chip, with the trial's "
                           "parameters and metrics (load with simulator.load_analog_model)",
        },
    },
)
async def trial_model(
    request: Request,
    study_id: str,
    number: Annotated[int, Path(ge=0, le=MAX_INT, description="Trial number")],
    store: StoreDep,
    _: ReadAccess,
    repeat: Annotated[int, Query(ge=0, le=1000, description="Which repeat's (seed's) model")] = 0,
) -> FileResponse:
    """The trained model of one trial as a file, streamed."""
    from dse.models import ModelStore, export_trial_model

    study = await run_in_threadpool(store.get_study, study_id)
    record = to_record(await run_in_threadpool(store.get_trial, study_id, number))
    spec = engine.load_stored_spec(study.spec)
    seed = record.seeds[repeat] if repeat < len(record.seeds) else spec.seeds[0]
    config = spec.trial_config(record.params, seed, check=False)
    models = ModelStore(model_store_dir(request.app.state.settings, store))
    data = await run_in_threadpool(export_trial_model, models, record, config, study=spec.name, repeat=repeat)
    fd, path = tempfile.mkstemp(prefix="dse-model-", suffix=".model")
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    return FileResponse(path, media_type="application/octet-stream",
                        filename=f"{study_id}-trial{number}-repeat{repeat}.model",
                        background=BackgroundTask(os.unlink, path))
