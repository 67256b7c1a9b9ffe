"""The region catalog: the packaged GSF dataset, its corrections, lookups and user overrides."""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from importlib import resources
from pathlib import Path

import pytest

from shared.core.errors import CatalogError
from shared.core.models import Cloud, RegionInfo
from shared.regions.catalog import CLOUD_ORDER, DATA_FILE, RegionCatalog, normalise_region_name
from shared.regions.overrides import parse_cloud, parse_overrides

HEADER = (
    "year,cloud-provider,cloud-region,cfe-region,em-zone-id,wt-region-id,location,geolocation,"
    "power-usage-effectiveness,grid-carbon-intensity-average-consumption-annual,"
    "grid-carbon-intensity-average-production-annual,grid-carbon-intensity-marginal-consumption-annual"
)

# Where the catalog deliberately departs from the dataset's newest row (see shared.regions.gsf).
CORRECTED_ZONES = {
    (Cloud.AZURE, "westus"): "US-CAL-CISO",  # California, not the Washington row the dataset has
    (Cloud.AZURE, "northeurope"): "IE",  # Dublin; the dataset also lists a Finland row
}


def packaged_rows() -> list[dict[str, str]]:
    text = resources.files("shared.data").joinpath(DATA_FILE).read_text(encoding="utf-8")
    return list(csv.DictReader(io.StringIO(text, newline="")))


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def catalog() -> RegionCatalog:
    return RegionCatalog.load()


# --- the packaged dataset ------------------------------------------------------------------------


def test_every_dataset_region_with_a_zone_resolves_to_its_newest_zone(
    catalog: RegionCatalog,
) -> None:
    newest: dict[tuple[Cloud, str], dict[str, str]] = {}
    for row in packaged_rows():
        cloud = parse_cloud(row["cloud-provider"])
        assert cloud is not None, row["cloud-provider"]
        key = (cloud, row["cloud-region"].strip())
        if key not in newest or int(row["year"]) > int(newest[key]["year"]):
            newest[key] = row
    checked = 0
    for (cloud, region), row in newest.items():
        zone = row["em-zone-id"].strip()
        if not zone:
            continue
        info = catalog.resolve(region, cloud)
        assert info is not None, region
        assert info.zone == CORRECTED_ZONES.get((cloud, region), zone), region
        checked += 1
    assert checked == 94


def test_every_dataset_row_with_a_zone_resolves_to_a_mapped_region(catalog: RegionCatalog) -> None:
    rows = [row for row in packaged_rows() if row["em-zone-id"].strip()]
    assert len(rows) == 357
    for row in rows:
        cloud = parse_cloud(row["cloud-provider"])
        info = catalog.resolve(row["cloud-region"], cloud)
        assert info is not None, row["cloud-region"]
        assert info.zone is not None, row["cloud-region"]


@pytest.mark.parametrize(
    ("cloud", "region", "zone", "annual"),
    [
        (Cloud.AWS, "us-west-2", "US-NW-BPAT", 119.76),
        (Cloud.AWS, "us-east-1", "US-MIDA-PJM", 396.25),
        (Cloud.AWS, "eu-west-1", "IE", 403.40),
        (Cloud.AWS, "eu-central-1", "DE", 370.93),
        (Cloud.AWS, "ap-southeast-1", "SG", 487.52),
        (Cloud.GCP, "us-central1", "US-MIDW-MISO", 501.42),
        (Cloud.GCP, "us-east1", "US-CAR-SC", 649.07),
        (Cloud.GCP, "us-west1", "US-NW-BPAT", 119.76),
        (Cloud.GCP, "europe-west1", "BE", 177.58),
        (Cloud.GCP, "asia-east1", "TW", 537.64),
        (Cloud.AZURE, "eastus", "US-MIDA-PJM", 396.25),
        (Cloud.AZURE, "eastus2", "US-MIDA-PJM", 396.25),
        (Cloud.AZURE, "westus", "US-CAL-CISO", 261.28),
        (Cloud.AZURE, "westeurope", "NL", 283.17),
        (Cloud.AZURE, "southeastasia", "SG", 487.52),
    ],
)
def test_reference_regions_resolve_with_their_zone_and_2023_annual_intensity(
    catalog: RegionCatalog, cloud: Cloud, region: str, zone: str, annual: float
) -> None:
    info = catalog.resolve(region, cloud)
    assert info is not None
    assert (info.cloud, info.region, info.zone) == (cloud, region, zone)
    assert info.annual_g_per_kwh == pytest.approx(annual)
    assert info.annual_year == 2023
    assert info.location
    assert info.latitude is not None
    assert info.longitude is not None
    source = catalog.annual_source(info)
    assert source is not None
    assert "grid-carbon-intensity-average-consumption-annual" in source


def test_a_value_the_dataset_carried_over_unchanged_keeps_the_year_it_describes(
    catalog: RegionCatalog,
) -> None:
    # The 2024 AWS rows repeat 2023's grid values; the 2024 PUE is new.
    info = catalog.resolve("us-east-1", Cloud.AWS)
    assert info is not None
    assert (info.annual_g_per_kwh, info.annual_year, info.pue) == (396.25, 2023, 1.15)


def test_google_2024_direct_basis_values_do_not_replace_lifecycle_ones(
    catalog: RegionCatalog,
) -> None:
    # The dataset's 2024 Google row says 412.72: Google's direct-basis figure, not a lifecycle mean.
    info = catalog.resolve("us-central1", Cloud.GCP)
    assert info is not None
    assert (info.annual_g_per_kwh, info.annual_year) == (501.42, 2023)


def test_one_grid_zone_has_one_annual_value_whichever_cloud_the_region_belongs_to(
    catalog: RegionCatalog,
) -> None:
    values: dict[str, set[float | None]] = defaultdict(set)
    for info in catalog.regions:
        if info.zone is not None:
            values[info.zone].add(info.annual_g_per_kwh)
    assert {zone: v for zone, v in values.items() if len(v) > 1} == {}
    assert values["US-MIDA-PJM"] == {396.25}


def test_azure_west_us_is_in_california_and_the_washington_row_is_west_us_2(
    catalog: RegionCatalog,
) -> None:
    west = catalog.resolve("westus", Cloud.AZURE)
    west2 = catalog.resolve("westus2", Cloud.AZURE)
    assert west is not None
    assert west2 is not None
    assert (west.zone, west.watttime_region, west.pue) == ("US-CAL-CISO", "CAISO_NORTH", None)
    assert west.latitude == pytest.approx(37.783)
    assert "California" in west.location
    assert (west2.zone, west2.watttime_region, west2.pue) == ("US-NW-BPAT", "BPA", 1.15)
    assert "Washington" in west2.location
    assert west2.annual_g_per_kwh == pytest.approx(119.76)


def test_azure_north_europe_is_dublin(catalog: RegionCatalog) -> None:
    info = catalog.resolve("northeurope", Cloud.AZURE)
    assert info is not None
    assert (info.zone, info.location, info.pue) == ("IE", "Ireland", 1.19)


def test_regions_without_a_zone_are_listed_as_unmapped_and_still_resolve(
    catalog: RegionCatalog,
) -> None:
    unmapped = {info.key for info in catalog.unmapped}
    assert unmapped == {
        "aws/ca-west-1",
        "aws/cn-north-1",
        "aws/cn-northwest-1",
        "gcp/europe-north2",
        "gcp/europe-west10",
        "gcp/northamerica-south1",
        "gcp/us-east2",
        "azure/westcentralus",
        "azure/westus3",
    }
    assert len(catalog.regions) - len(catalog.unmapped) == 95
    berlin = catalog.resolve("europe-west10")
    assert berlin is not None
    assert berlin.zone is None
    assert berlin.annual_g_per_kwh == pytest.approx(275.82)  # Google's own figure, nothing better
    assert catalog.resolve("westus3", Cloud.AZURE) in catalog.unmapped


def test_a_zone_that_no_year_gives_an_annual_value_for_has_none(catalog: RegionCatalog) -> None:
    # Only WattTime's marginal rate exists for Mexico; it is not an average and is not used.
    info = catalog.resolve("mexicocentral", Cloud.AZURE)
    assert info is not None
    assert (info.zone, info.annual_g_per_kwh, info.annual_year) == ("MX", None, None)
    assert catalog.annual_source(info) is None


def test_regions_are_ordered_by_cloud_then_name(catalog: RegionCatalog) -> None:
    keys = [(CLOUD_ORDER.index(info.cloud), info.region) for info in catalog.regions]
    assert keys == sorted(keys)
    assert len(set(info.key for info in catalog.regions)) == len(catalog) == 104


def test_the_packaged_catalog_is_loaded_once() -> None:
    assert RegionCatalog.load() is RegionCatalog.load()


# --- building from dataset text ------------------------------------------------------------------


def test_values_missing_in_the_newest_year_come_from_the_newest_older_year_that_has_them() -> None:
    text = "\n".join(
        [
            HEADER,
            "2024,Amazon Web Services,xx-test-1,,FR,FR,Paris,,,,,",
            "2023,Amazon Web Services,xx-test-1,,FR,FR,Paris,,1.2,52.87,45.21,",
            '2022,Amazon Web Services,xx-test-1,,FR,FR,Paris,"48.85,2.35",1.3,91.23,72.0,',
        ]
    )
    info = RegionCatalog.from_gsf_csv(text).resolve("xx-test-1")
    assert info is not None
    assert (info.annual_g_per_kwh, info.annual_year, info.pue) == (52.87, 2023, 1.2)
    assert (info.latitude, info.longitude) == (48.85, 2.35)


def test_grid_values_of_an_older_year_with_another_zone_are_not_used() -> None:
    text = "\n".join(
        [
            HEADER,
            "2024,Google Cloud,xx-test1,,BE,BE,Belgium,,1.09,,,",
            "2023,Google Cloud,xx-test1,,GB,UK,Belgium,,,206.99,209.32,",
        ]
    )
    info = RegionCatalog.from_gsf_csv(text).resolve("xx-test1")
    assert info is not None
    assert (info.zone, info.watttime_region, info.annual_g_per_kwh) == ("BE", "BE", None)


def test_the_production_based_mean_is_used_only_when_no_consumption_mean_exists() -> None:
    text = "\n".join([HEADER, "2023,Microsoft Azure,xxtest,,NL,NL,Netherlands,,,,292.61,501.34"])
    catalog = RegionCatalog.from_gsf_csv(text)
    info = catalog.resolve("xxtest")
    assert info is not None
    assert info.annual_g_per_kwh == pytest.approx(292.61)  # never the 501.34 marginal rate
    assert "production" in (catalog.annual_source(info) or "")


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        ("twenty,Google Cloud,x,,BE,BE,Belgium,,,,,", "column 'year'"),
        ("2023,Google Cloud,x,,BE,BE,Belgium,,0.9,,,", "column 'power-usage-effectiveness'"),
        ("2023,Google Cloud,x,,BE,BE,Belgium,,,lots,,", "not a number"),
        ('2023,Google Cloud,x,,BE,BE,Belgium,"91,200",,,,', "out of range"),
    ],
)
def test_a_malformed_dataset_cell_names_its_line_and_column(row: str, problem: str) -> None:
    with pytest.raises(CatalogError, match="line 2") as caught:
        RegionCatalog.from_gsf_csv(f"{HEADER}\n{row}")
    assert problem in str(caught.value)


def test_a_dataset_without_the_required_columns_is_rejected() -> None:
    with pytest.raises(CatalogError, match="missing columns"):
        RegionCatalog.from_gsf_csv("year,cloud-provider\n2023,Google Cloud\n")


# --- lookups -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["us-east-1", "US-EAST-1", " us-east-1 ", "Us-East-1"])
def test_region_names_match_regardless_of_case_and_surrounding_space(
    catalog: RegionCatalog, name: str
) -> None:
    info = catalog.resolve(name)
    assert info is not None
    assert info.key == "aws/us-east-1"


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("East US", "azure/eastus"),
        ("east us 2", "azure/eastus2"),
        ("West Europe", "azure/westeurope"),
        ("Southeast Asia", "azure/southeastasia"),
    ],
)
def test_azure_display_names_resolve_to_the_region(
    catalog: RegionCatalog, name: str, key: str
) -> None:
    info = catalog.resolve(name)
    assert info is not None
    assert info.key == key
    assert normalise_region_name(info.aliases[0]) == normalise_region_name(name)


def test_an_unknown_region_resolves_to_nothing(catalog: RegionCatalog) -> None:
    assert catalog.resolve("mars-north-1") is None
    assert catalog.resolve("") is None


def test_a_region_of_another_cloud_is_still_found_when_the_given_cloud_lacks_it(
    catalog: RegionCatalog,
) -> None:
    info = catalog.resolve("us-east-1", Cloud.AZURE)
    assert info is not None
    assert info.key == "aws/us-east-1"


def shared_name_catalog() -> RegionCatalog:
    return RegionCatalog(
        [
            RegionInfo(cloud=Cloud.AZURE, region="central", zone="NL"),
            RegionInfo(cloud=Cloud.GCP, region="central", zone="BE"),
            RegionInfo(cloud=Cloud.AWS, region="central", zone="DE"),
        ]
    )


def test_a_name_several_clouds_share_goes_to_the_given_cloud() -> None:
    info = shared_name_catalog().resolve("central", Cloud.GCP)
    assert info is not None
    assert info.zone == "BE"


def test_a_name_several_clouds_share_goes_to_the_first_cloud_in_order_without_one() -> None:
    info = shared_name_catalog().resolve("central")
    assert info is not None
    assert info.cloud is Cloud.AWS


def test_a_region_name_wins_over_another_region_alias() -> None:
    catalog = RegionCatalog(
        [
            RegionInfo(cloud=Cloud.ONPREM, region="dc1", zone="FR", aliases=("eastus",)),
            RegionInfo(cloud=Cloud.AZURE, region="eastus", zone="US-MIDA-PJM"),
        ]
    )
    info = catalog.resolve("eastus")
    assert info is not None
    assert info.cloud is Cloud.AZURE


def test_regions_are_found_by_zone(catalog: RegionCatalog) -> None:
    keys = {info.key for info in catalog.by_zone("us-mida-pjm")}
    assert {"aws/us-east-1", "gcp/us-east4", "azure/eastus", "azure/eastus2"} <= keys
    assert all(info.zone == "US-MIDA-PJM" for info in catalog.by_zone("US-MIDA-PJM"))
    assert catalog.by_zone("XX-NOWHERE") == ()


@pytest.mark.parametrize(
    ("typo", "expected"),
    [("us-east-l", "us-east-1"), ("westeurop", "westeurope"), ("europe-wset1", "europe-west1")],
)
def test_close_matches_suggest_the_region_meant(
    catalog: RegionCatalog, typo: str, expected: str
) -> None:
    suggestions = catalog.close_matches(typo)
    assert expected in suggestions
    assert 0 < len(suggestions) <= 3


def test_close_matches_suggest_nothing_for_a_name_like_no_region(catalog: RegionCatalog) -> None:
    assert catalog.close_matches("zzzzzzzz") == []


# --- overrides -----------------------------------------------------------------------------------

ON_PREM_YAML = """\
- region: dc-paris-1
  zone: FR
  location: Paris, France
  latitude: 48.85
  longitude: 2.35
  pue: 1.4
  annualGramsPerKwh: 52.9
  annualYear: 2023
  aliases: [paris]
"""


def test_an_override_file_adds_an_on_prem_region(tmp_path: Path) -> None:
    catalog = RegionCatalog.load(write(tmp_path, "regions.yaml", ON_PREM_YAML))
    info = catalog.resolve("dc-paris-1")
    assert info == RegionInfo(
        cloud=Cloud.ONPREM,
        region="dc-paris-1",
        zone="FR",
        location="Paris, France",
        latitude=48.85,
        longitude=2.35,
        pue=1.4,
        annual_g_per_kwh=52.9,
        annual_year=2023,
        aliases=("paris",),
    )
    assert catalog.resolve("Paris") == info
    assert info in catalog.by_zone("FR")
    assert len(catalog) == len(RegionCatalog.load()) + 1
    assert "regions.yaml" in (catalog.annual_source(info) or "")


def test_a_json_override_file_with_a_regions_key_is_accepted(tmp_path: Path) -> None:
    document = {"regions": [{"region": "lab", "cloud": "onprem", "zone": "DE"}]}
    catalog = RegionCatalog.load(write(tmp_path, "regions.json", json.dumps(document)))
    info = catalog.resolve("lab")
    assert info is not None
    assert (info.cloud, info.zone, info.annual_g_per_kwh) == (
        Cloud.ONPREM,
        "DE",
        None,
    )


def test_overriding_a_cloud_region_with_another_zone_keeps_site_facts_but_not_grid_ones(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, "r.yaml", "- {region: us-west-2, cloud: aws, zone: US-NW-PACW}\n")
    info = RegionCatalog.load(path).resolve("us-west-2", Cloud.AWS)
    assert info is not None
    assert (info.zone, info.pue, info.location) == ("US-NW-PACW", 1.12, "US West (Oregon)")
    assert (info.annual_g_per_kwh, info.annual_year, info.watttime_region) == (None, None, None)


def test_overriding_a_cloud_region_within_its_zone_keeps_its_annual_value(tmp_path: Path) -> None:
    path = write(
        tmp_path, "r.yaml", "- {region: us-west-2, cloud: aws, zone: US-NW-BPAT, pue: 1.2}"
    )
    info = RegionCatalog.load(path).resolve("us-west-2", Cloud.AWS)
    assert info is not None
    assert (info.pue, info.annual_g_per_kwh, info.annual_year) == (1.2, 119.76, 2023)


def test_an_override_without_cloud_replaces_the_one_cloud_region_of_that_name(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, "r.yaml", "- {region: East US, zone: US-MIDA-PJM, annualGramsPerKwh: 1}")
    catalog = RegionCatalog.load(path)
    info = catalog.resolve("eastus")
    assert info is not None
    assert (info.key, info.annual_g_per_kwh, info.annual_year) == ("azure/eastus", 1.0, None)
    assert len(catalog) == len(RegionCatalog.load())


def test_an_override_giving_an_unmapped_region_its_zone_keeps_its_annual_value(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, "r.yaml", "- {region: europe-west10, zone: DE}")
    catalog = RegionCatalog.load(path)
    info = catalog.resolve("europe-west10")
    assert info is not None
    assert (info.cloud, info.zone, info.annual_g_per_kwh) == (Cloud.GCP, "DE", 275.82)
    assert info not in catalog.unmapped


def test_loading_overrides_leaves_the_packaged_catalog_untouched(tmp_path: Path) -> None:
    RegionCatalog.load(write(tmp_path, "r.yaml", "- {region: us-east-1, cloud: aws, zone: FR}"))
    info = RegionCatalog.load().resolve("us-east-1")
    assert info is not None
    assert info.zone == "US-MIDA-PJM"


@pytest.mark.parametrize("text", ["", "# nothing yet\n", "[]", "regions: []", "regions:\n"])
def test_an_empty_override_file_changes_nothing(tmp_path: Path, text: str) -> None:
    catalog = RegionCatalog.load(write(tmp_path, "r.yaml", text))
    assert catalog.regions == RegionCatalog.load().regions


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- region: dc1\n", "entry 1 (region 'dc1'): field 'zone': is required"),
        ("- zone: FR\n", "entry 1: field 'region': is required"),
        ("- {region: '  ', zone: FR}\n", "field 'region': must not be empty"),
        ("- {region: dc1, zone: 7}\n", "field 'zone': must be a string, got a number"),
        ("- {region: dc1, zone: FR, pue: 0.9}\n", "field 'pue': must be >= 1, got 0.9"),
        ("- {region: dc1, zone: FR, pue: high}\n", "field 'pue': must be a number, got a string"),
        ("- {region: dc1, zone: FR, pue: true}\n", "field 'pue': must be a number, got a boolean"),
        ("- {region: dc1, zone: FR, pue: .nan}\n", "field 'pue': must be a finite number"),
        ("- {region: dc1, zone: FR, annualGramsPerKwh: -5}\n", "'annualGramsPerKwh': must be >= 0"),
        ("- {region: dc1, zone: FR, annualYear: 2023.5}\n", "'annualYear': must be a whole number"),
        ("- {region: dc1, zone: FR, annualGramsPerKWh: 50}\n", "did you mean 'annualGramsPerKwh'"),
        ("- {region: dc1, zone: FR, cloud: oracle}\n", "field 'cloud': unknown cloud 'oracle'"),
        ("- {region: dc1, zone: FR, latitude: 48.8}\n", "give latitude and longitude together"),
        ("- {region: dc1, zone: FR, latitude: 91, longitude: 0}\n", "between -90 and 90"),
        ("- {region: dc1, zone: FR, aliases: paris}\n", "'aliases': must be a list of non-empty"),
        ("- {region: dc1, zone: FR}\n- {region: DC1, zone: DE}\n", "again (first in entry 1)"),
        ("- just-a-name\n", "entry 1: must be a mapping with 'region' and 'zone', got a string"),
        ("region: dc1\nzone: FR\n", "expected a list of regions or a mapping with only"),
        ("regions: dc1\n", "expected a list of regions, got a string"),
        ("- {region: dc1, zone: FR\n", "not valid YAML"),
    ],
)
def test_an_invalid_override_file_is_rejected_naming_the_entry_and_field(
    tmp_path: Path, text: str, message: str
) -> None:
    path = write(tmp_path, "regions.yaml", text)
    with pytest.raises(CatalogError) as caught:
        RegionCatalog.load(path)
    assert message in str(caught.value)
    assert str(caught.value).startswith(str(path))


def test_an_invalid_json_override_file_is_reported_as_json(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="not valid JSON"):
        RegionCatalog.load(write(tmp_path, "regions.json", '[{"region": "dc1",}]'))


def test_a_missing_override_file_is_a_catalog_error(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="cannot read region overrides"):
        RegionCatalog.load(tmp_path / "absent.yaml")


def test_an_override_without_cloud_for_a_name_several_clouds_share_must_say_which() -> None:
    overrides = parse_overrides([{"region": "central", "zone": "FR"}], "inline")
    with pytest.raises(CatalogError, match=r"field .cloud.: .*several clouds"):
        shared_name_catalog().with_overrides(overrides)
