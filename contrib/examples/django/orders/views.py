"""Placing an order: the order and the task that fulfils it commit together, or neither does."""

import json

from django.db import transaction
from django.http import HttpRequest
from django.http import JsonResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET
from django.views.decorators.http import require_POST

from celeriac_django import get_app
from orders.models import Order
from orders.tasks import fulfil


@csrf_exempt
@require_POST
def place_order(request: HttpRequest) -> JsonResponse:
    name = json.loads(request.body or b"{}").get("name", "")
    if not name:
        return JsonResponse({"error": "name is required"}, status=400)
    with transaction.atomic():
        order = Order.objects.create(name=name)
        # Written into the outbox in this transaction: sent if and only if it commits.
        result = fulfil.delay_in_transaction(order.pk)
        order.task_id = result.id
        order.save(update_fields=["task_id"])
    return JsonResponse({"order": order.pk, "task_id": result.id}, status=202)


@require_GET
def order_status(request: HttpRequest, pk: int) -> JsonResponse:
    order = get_object_or_404(Order, pk=pk)
    result = get_app().AsyncResult(order.task_id)
    return JsonResponse(
        {
            "order": order.pk,
            "fulfilled": order.fulfilled,
            "state": result.state,
            "result": result.result if result.successful() else None,
        }
    )
