"""The analytics team's dataset: flights.silver joined with weather.silver -> gold.flight_weather."""

from declarations.flight_weather import suites, v1
from declarations.flight_weather.schemas import FLIGHT_WEATHER, KEY
from lakeops.datasets.declaration import Dataset, Layer
from lakeops.datasets.engines import on_pandas
from lakeops.datasets.names import TableRef
from lakeops.datasets.windows import WindowColumn

FLIGHT_DATE = WindowColumn("flight_date")

DATASET = Dataset(
    name="flight_weather",
    owner="analytics-team",
    description="Flights and delays per day and New York origin, beside that day's weather at the airport.",
    layers=(
        Layer(
            "gold",
            TableRef("gold", "flight_weather"),
            FLIGHT_WEATHER,
            FLIGHT_DATE,
            key=KEY,
            partition=("flight_date",),
            # Two other teams' layers, in the order the transform takes them.
            inputs=("flights.silver", "weather.silver"),
            transforms={"v1": on_pandas(v1.to_gold)},
            suite=suites.gold,
            description="One row per (flight_date, origin): flights, cancelled, mean delays, visibility, "
            "precipitation, wind, and the hourly observations they come from.",
        ),
    ),
    default_version="v1",
    release=("gold",),
)
