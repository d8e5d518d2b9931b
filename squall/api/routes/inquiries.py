"""``/api/v1/inquiries``: questions workflows ask (``core.ask``), and their answers."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict
from starlette.responses import Response

from squall.api.deps import Auth, Paging, get_runtime
from squall.api.serialize import json_response
from squall.errors import ValidationError

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/inquiries", tags=["inquiries"])


class InquiryResponse(BaseModel):
    """Body of ``PUT /api/v1/inquiries/{id}`` (StackStorm's InquiryResponseResult)."""

    model_config = ConfigDict(extra="forbid")

    id: str | None = None
    response: Any = None


@router.get("")
async def list_inquiries(
    request: Request, principal: Auth, page: Paging, status: str | None = "pending"
) -> Response:
    """Pending inquiries, newest first (``status=all`` lists answered ones too)."""
    service = get_runtime(request).workflows.inquiries
    wanted = None if status in (None, "", "all") else status
    items, total = await service.list(status=wanted, limit=page.limit, offset=page.offset)
    return json_response(
        [i.as_api() for i in items],
        headers={"X-Total-Count": str(total), "X-Limit": str(page.limit)},
    )


@router.get("/{inquiry_id}")
async def get_inquiry(inquiry_id: str, request: Request, principal: Auth) -> Response:
    inquiry = await get_runtime(request).workflows.inquiries.get(inquiry_id)
    return json_response(inquiry.as_api())


@router.put("/{inquiry_id}")
async def respond(
    inquiry_id: str, body: InquiryResponse, request: Request, principal: Auth
) -> Response:
    """Answer an inquiry: 400 when the response does not match the schema (naming the
    field), 403 when the caller is not among the allowed users and roles."""
    if body.id is not None and body.id != inquiry_id:
        raise ValidationError(f"the body's id {body.id!r} is not the inquiry {inquiry_id!r}")
    service = get_runtime(request).workflows.inquiries
    return json_response(await service.respond(principal, inquiry_id, body.response))
