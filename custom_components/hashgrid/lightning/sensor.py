"""Sensors of a Lightning node, and of each neighbour's settlement."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.config_entries import ConfigSubentry
from homeassistant.const import EntityCategory, UnitOfEnergy
from homeassistant.core import Event, EventStateChangedData, HomeAssistant, callback
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.event import async_track_state_change_event

from ..models import HashGridConfigEntry
from .const import (
    CONF_DIRECTION,
    CONF_METER_ENTITY,
    CONF_PRICE_ENTITY,
    UNIT_SATS,
    Direction,
)
from .coordinator import LightningCoordinator, NodeData
from .entity import NeighbourEntity, NodeEntity
from .ledger import Reason
from .runtime import LightningRuntime, lightning_runtime
from .settlement import Outcome, energy_kwh, signal_settled

type StateValue = str | int | float | Decimal | datetime | None

#: The states of a neighbour's last settlement: an outcome, or why nothing was
#: paid (a refusal shows its reason: "Metering started", not "Refused").
SETTLEMENT_STATES = list(
    dict.fromkeys(["paid", "failed", "pending", "refused", "rebaselined", *Reason])
)


@dataclass(frozen=True, kw_only=True)
class NodeSensorEntityDescription(SensorEntityDescription):
    """A node sensor: its value from the last poll."""

    value_fn: Callable[[NodeData], StateValue]


@dataclass(frozen=True, kw_only=True)
class NeighbourSensorEntityDescription(SensorEntityDescription):
    """A neighbour sensor: its value from the ledger, the meter or the node."""

    value_fn: Callable[[LightningRuntime, str], StateValue]
    directions: frozenset[Direction] = frozenset(Direction)


def _diagnostic(
    key: str, value_fn: Callable[[NodeData], StateValue]
) -> NodeSensorEntityDescription:
    return NodeSensorEntityDescription(
        key=key,
        translation_key=key,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=value_fn,
    )


def _sats(
    key: str,
    value_fn: Callable[[NodeData], StateValue],
    state_class: SensorStateClass = SensorStateClass.MEASUREMENT,
) -> NodeSensorEntityDescription:
    return NodeSensorEntityDescription(
        key=key,
        translation_key=key,
        native_unit_of_measurement=UNIT_SATS,
        state_class=state_class,
        suggested_display_precision=0,
        value_fn=value_fn,
    )


def _count(
    key: str, value_fn: Callable[[NodeData], StateValue]
) -> NodeSensorEntityDescription:
    return NodeSensorEntityDescription(
        key=key,
        translation_key=key,
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=value_fn,
    )


NODE_SENSORS: tuple[NodeSensorEntityDescription, ...] = (
    _diagnostic("node_alias", lambda d: d.alias),
    _diagnostic("node_id", lambda d: d.node_id),
    _diagnostic("network", lambda d: d.network),
    NodeSensorEntityDescription(
        key="block_height",
        translation_key="block_height",
        entity_category=EntityCategory.DIAGNOSTIC,
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda d: d.block_height,
    ),
    _diagnostic("node_version", lambda d: d.version),
    _sats("onchain_balance", lambda d: d.onchain_sat),
    _sats("lightning_spendable", lambda d: d.spendable_sat),
    _sats("lightning_receivable", lambda d: d.receivable_sat),
    _count("channels_active", lambda d: d.channels_active),
    _count("channels_total", lambda d: d.channels_total),
    _count("peers", lambda d: d.peers),
    _sats("fees_collected", lambda d: d.fees_collected_sat, SensorStateClass.TOTAL),
)


def _unpaid_kwh(runtime: LightningRuntime, subentry_id: str) -> Decimal | None:
    settler = runtime.settler
    meter_entity = settler.neighbours[subentry_id].data[CONF_METER_ENTITY]
    account = settler.ledger.accounts.get(subentry_id)
    if account is None:
        return None
    return account.unpaid_kwh(energy_kwh(settler.hass, meter_entity))


def _last_status(runtime: LightningRuntime, subentry_id: str) -> str | None:
    settler = runtime.settler
    if (last := settler.last_outcome.get(subentry_id)) is not None:
        return last[0]
    account = settler.ledger.accounts.get(subentry_id)
    if account is None:
        return None
    if account.last_status is None and account.meter_last_settled_kwh is not None:
        return Reason.BASELINE_SET.value
    return account.last_status


def _last_time(runtime: LightningRuntime, subentry_id: str) -> datetime | None:
    settler = runtime.settler
    if (last := settler.last_outcome.get(subentry_id)) is not None:
        return last[1]
    account = settler.ledger.accounts.get(subentry_id)
    return None if account is None else account.last_time


def _received_sat(runtime: LightningRuntime, subentry_id: str) -> int | None:
    offer = runtime.offers.get(subentry_id)
    data = runtime.coordinator.data
    if offer is None or data is None:
        return None
    return data.offer_received_msat.get(offer[0], 0) // 1000


def _arrears_sat(runtime: LightningRuntime, subentry_id: str) -> int | None:
    owed = runtime.settler.owed_by_msat(subentry_id)
    offer = runtime.offers.get(subentry_id)
    data = runtime.coordinator.data
    if owed is None or offer is None or data is None:
        return None
    received = data.offer_received_msat.get(offer[0], 0)
    return int((owed - received) // 1000)


WE_PAY = frozenset({Direction.WE_PAY})
THEY_PAY = frozenset({Direction.THEY_PAY})

NEIGHBOUR_SENSORS: tuple[NeighbourSensorEntityDescription, ...] = (
    NeighbourSensorEntityDescription(
        key="settled_energy",
        translation_key="settled_energy",
        device_class=SensorDeviceClass.ENERGY,
        native_unit_of_measurement=UnitOfEnergy.KILO_WATT_HOUR,
        state_class=SensorStateClass.TOTAL_INCREASING,
        suggested_display_precision=3,
        value_fn=lambda r, s: (
            a.settled_kwh if (a := r.settler.ledger.accounts.get(s)) else Decimal(0)
        ),
        directions=WE_PAY,
    ),
    NeighbourSensorEntityDescription(
        key="sats_paid",
        translation_key="sats_paid",
        native_unit_of_measurement=UNIT_SATS,
        state_class=SensorStateClass.TOTAL_INCREASING,
        value_fn=lambda r, s: (
            a.paid_msat // 1000 if (a := r.settler.ledger.accounts.get(s)) else 0
        ),
        directions=WE_PAY,
    ),
    NeighbourSensorEntityDescription(
        key="unpaid_energy",
        translation_key="unpaid_energy",
        device_class=SensorDeviceClass.ENERGY,
        native_unit_of_measurement=UnitOfEnergy.KILO_WATT_HOUR,
        suggested_display_precision=3,
        value_fn=_unpaid_kwh,
    ),
    NeighbourSensorEntityDescription(
        key="last_settlement_status",
        translation_key="last_settlement_status",
        device_class=SensorDeviceClass.ENUM,
        options=SETTLEMENT_STATES,
        value_fn=_last_status,
        directions=WE_PAY,
    ),
    NeighbourSensorEntityDescription(
        key="last_settlement",
        translation_key="last_settlement",
        device_class=SensorDeviceClass.TIMESTAMP,
        value_fn=_last_time,
        directions=WE_PAY,
    ),
    NeighbourSensorEntityDescription(
        key="sats_received",
        translation_key="sats_received",
        native_unit_of_measurement=UNIT_SATS,
        state_class=SensorStateClass.TOTAL_INCREASING,
        value_fn=_received_sat,
        directions=THEY_PAY,
    ),
    NeighbourSensorEntityDescription(
        key="arrears",
        translation_key="arrears",
        native_unit_of_measurement=UNIT_SATS,
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=_arrears_sat,
        directions=THEY_PAY,
    ),
)


class NodeSensor(NodeEntity, SensorEntity):
    """A sensor of the node."""

    entity_description: NodeSensorEntityDescription

    @property
    def native_value(self) -> StateValue:
        """Return the value from the last poll."""
        return self.entity_description.value_fn(self.coordinator.data)


class NeighbourSensor(NeighbourEntity, SensorEntity):
    """A sensor of one neighbour's settlement."""

    entity_description: NeighbourSensorEntityDescription

    def __init__(
        self,
        runtime: LightningRuntime,
        subentry: ConfigSubentry,
        description: NeighbourSensorEntityDescription,
    ) -> None:
        """Follow the ledger, the meter (and price) sensors and the node."""
        super().__init__(runtime.coordinator, subentry, description)
        self.runtime = runtime
        if subentry.data.get(CONF_DIRECTION) == Direction.THEY_PAY and (
            offer := runtime.offers.get(subentry.subentry_id)
        ):
            self._attr_extra_state_attributes = {"offer": offer[1]}

    @property
    def native_value(self) -> StateValue:
        """Return the value from the ledger and the meter now."""
        return self.entity_description.value_fn(self.runtime, self.subentry.subentry_id)

    async def async_added_to_hass(self) -> None:
        """Update on settlements, meter/price changes and node polls."""
        await super().async_added_to_hass()
        sid = self.subentry.subentry_id

        @callback
        def _settled(_outcome: Outcome) -> None:
            self.async_write_ha_state()

        @callback
        def _changed(_event: Event[EventStateChangedData] | None = None) -> None:
            self.async_write_ha_state()

        entities = [
            e
            for e in (
                self.subentry.data.get(CONF_METER_ENTITY),
                self.subentry.data.get(CONF_PRICE_ENTITY),
            )
            if e
        ]
        self.async_on_remove(
            async_dispatcher_connect(self.hass, signal_settled(sid), _settled)
        )
        self.async_on_remove(
            async_track_state_change_event(self.hass, entities, _changed)
        )
        self.async_on_remove(self.coordinator.async_add_listener(_changed))


def neighbours_of(
    runtime: LightningRuntime,
) -> list[tuple[ConfigSubentry, Direction]]:
    """Each neighbour with its direction."""
    return [
        (sub, Direction(sub.data.get(CONF_DIRECTION, Direction.WE_PAY)))
        for sub in runtime.settler.neighbours.values()
    ]


async def async_setup_sensors(
    hass: HomeAssistant,
    entry: HashGridConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the node's sensors, then each neighbour's (under its subentry)."""
    runtime = lightning_runtime(entry)
    coordinator: LightningCoordinator = runtime.coordinator
    async_add_entities(NodeSensor(coordinator, d) for d in NODE_SENSORS)
    for subentry, direction in neighbours_of(runtime):
        async_add_entities(
            (
                NeighbourSensor(runtime, subentry, d)
                for d in NEIGHBOUR_SENSORS
                if direction in d.directions
            ),
            config_subentry_id=subentry.subentry_id,
        )
