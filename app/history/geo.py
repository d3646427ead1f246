"""Where households are, for near repeat: British National Grid coordinates (metres) and the
grid cell that indexes them.

A force may give a household's `easting`/`northing` (BNG, EPSG:27700) or its
`latitude`/`longitude` (WGS84, EPSG:4326), converted here with pyproj. Distances are then plain
Euclidean metres on the grid (the scale error of the projection is well under 0.1% across
Great Britain). A cell is a `CELL_METRES` square of the grid, numbered so that one integer
column with an ordinary b-tree index finds every record in the squares around a point (no
PostGIS).
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

# The cell size is fixed by the stored data (changing it means recomputing every cell); a
# radius larger than a cell simply reads more rings of cells.
CELL_METRES = 500
# Cells per row: the grid spans 0-700 km east, 0-1300 km north; 4096 columns cover 2,048 km.
_COLUMNS = 4096
# Great Britain's grid, with a margin: a coordinate outside is a mistake, not a place.
EASTING_RANGE = (0.0, 800_000.0)
NORTHING_RANGE = (0.0, 1_400_000.0)
LATITUDE_RANGE = (49.0, 62.0)
LONGITUDE_RANGE = (-9.0, 3.0)


@lru_cache(maxsize=1)
def _transformer() -> Any:
    from pyproj import Transformer  # on first use: loading PROJ costs start-up time

    return Transformer.from_crs("EPSG:4326", "EPSG:27700", always_xy=True)


def to_bng(latitude: float, longitude: float) -> tuple[float, float]:
    """(easting, northing) in metres for a WGS84 latitude and longitude."""
    easting, northing = _transformer().transform(longitude, latitude)
    return round(float(easting), 1), round(float(northing), 1)


def cell_of(easting: float, northing: float) -> int:
    return int(easting // CELL_METRES) * _COLUMNS + int(northing // CELL_METRES)


def cells_around(easting: float, northing: float, radius_m: float) -> list[int]:
    """Every cell that may hold a point within `radius_m` of (easting, northing)."""
    col0 = int((easting - radius_m) // CELL_METRES)
    col1 = int((easting + radius_m) // CELL_METRES)
    row0 = int((northing - radius_m) // CELL_METRES)
    row1 = int((northing + radius_m) // CELL_METRES)
    return [
        col * _COLUMNS + row
        for col in range(max(col0, 0), col1 + 1)
        for row in range(max(row0, 0), row1 + 1)
    ]


def distance(a: tuple[float, float], b: tuple[float, float]) -> float:
    return math.hypot(a[0] - b[0], a[1] - b[1])


def check_bng(easting: float, northing: float) -> str | None:
    """Why (easting, northing) is not a place in Great Britain's grid, or None."""
    if not EASTING_RANGE[0] <= easting <= EASTING_RANGE[1]:
        return "easting outside the British National Grid (0-800000 m)"
    if not NORTHING_RANGE[0] <= northing <= NORTHING_RANGE[1]:
        return "northing outside the British National Grid (0-1400000 m)"
    return None


def check_wgs84(latitude: float, longitude: float) -> str | None:
    if not LATITUDE_RANGE[0] <= latitude <= LATITUDE_RANGE[1]:
        return "latitude outside Great Britain (49 to 62)"
    if not LONGITUDE_RANGE[0] <= longitude <= LONGITUDE_RANGE[1]:
        return "longitude outside Great Britain (-9 to 3)"
    return None
