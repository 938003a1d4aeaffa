from __future__ import annotations

import json

import pytest

from forecasting.config import ConfigError, parse_config
from forecasting.models.names import KNOWN_MODELS


def raw(**model: object) -> dict:
    return {
        "input_parameters": {"source_data_url": "http://127.0.0.1/x.csv"},
        "model_parameters": {"models": "arima", **model},
    }


def errors_of(data: object) -> dict[str, str]:
    with pytest.raises(ConfigError) as info:
        parse_config(data)  # type: ignore[arg-type]
    assert isinstance(info.value, ValueError)
    return {e.field: e.message for e in info.value.errors}


def test_defaults_follow_timex() -> None:
    cfg = parse_config(raw()).config
    mp = cfg.model_parameters
    assert (mp.test_values, mp.test_percentage, mp.delta_training_percentage, mp.prediction_lags) == (
        None,
        10,
        20,
        10,
    )
    assert mp.main_accuracy_estimator == "mae"
    assert cfg.transformations == ["none"]
    assert mp.test_size(100) == 10 and mp.test_size(3) == 1


def test_every_field_is_read() -> None:
    data = {
        "activity_title": "t",
        "max_threads": 3,
        "input_parameters": {
            "source_data_url": "a.csv",
            "columns_to_load_from_url": "date, a,b",
            "datetime_column_name": "date",
            "frequency": "MS",
            "dateparser_options": {"settings": {"DATE_ORDER": "DMY"}},
            "add_diff_column": "a",
            "timeseries_names": {"a": "A"},
        },
        "selection_parameters": {
            "column_name_selection": "region",
            "value_selection": "north",
            "init_datetime": "2020-01-01",
            "end_datetime": "2021-01-01",
        },
        "model_parameters": {
            "models": "FBProphet, arima,naive,LSTM",
            "possible_transformations": "none,log,log_modified,yeo_johnson",
            "main_accuracy_estimator": "RMSE",
            "test_values": 5,
            "delta_training_percentage": 30,
            "prediction_lags": 7,
            "min_values": {"_all": 0},
            "max_values": {"a": 10},
            "round_to_integer": "a,_all",
        },
    }
    cfg = parse_config(data).config
    ip, mp, sel = cfg.input_parameters, cfg.model_parameters, cfg.selection_parameters
    assert ip.columns_to_load_from_url == ["date", "a", "b"] and ip.date_column == "date"
    assert ip.frequency == "MS" and ip.add_diff_column == ["a"] and ip.timeseries_names == {"a": "A"}
    assert ip.dateparser_options == {"settings": {"DATE_ORDER": "DMY"}}
    assert sel is not None and (sel.column_name_selection, sel.value_selection) == ("region", "north")
    assert (sel.init_datetime, sel.end_datetime) == ("2020-01-01", "2021-01-01")
    assert cfg.model_names == ["fbprophet", "arima", "naive", "lstm"]
    assert cfg.transformations == ["none", "log", "log_modified", "yeo-johnson"]
    assert (mp.main_accuracy_estimator, mp.test_values, mp.delta_training_percentage) == ("rmse", 5, 30)
    assert (mp.prediction_lags, mp.min_values, mp.max_values) == (7, {"_all": 0}, {"a": 10})
    assert mp.round_to_integer == ["a", "_all"] and cfg.max_threads == 3


@pytest.mark.parametrize(
    ("model", "field", "expected"),
    [
        (
            {"models": "prophett"},
            "model_parameters.models",
            "unknown model 'prophett'; known: fbprophet, arima",
        ),
        ({"models": ""}, "model_parameters.models", "at least 1"),
        (
            {"possible_transformations": "cbrt"},
            "model_parameters.possible_transformations",
            "unknown transformation 'cbrt'",
        ),
        (
            {"main_accuracy_estimator": "r2"},
            "model_parameters.main_accuracy_estimator",
            "unknown accuracy estimator",
        ),
        ({"test_values": 0}, "model_parameters.test_values", "greater than or equal to 1"),
        ({"test_percentage": 150}, "model_parameters.test_percentage", "less than 100"),
        ({"delta_training_percentage": 0}, "model_parameters.delta_training_percentage", "greater than 0"),
        ({"prediction_lags": 0}, "model_parameters.prediction_lags", "greater than or equal to 1"),
        ({"min_values": {"_all": "low"}}, "model_parameters.min_values._all", "number"),
        ({"max_values": 3}, "model_parameters.max_values", "dictionary"),
        ({"arima_seasonal": "false"}, "model_parameters.arima_seasonal", "expected true or false (a JSON boolean)"),
        ({"arima_seasonal": 0}, "model_parameters.arima_seasonal", "false: TIMEX 1.2.3's non-seasonal auto_arima"),
    ],
)
def test_model_parameter_errors_name_the_field(model: dict, field: str, expected: str) -> None:
    found = errors_of(raw(**model))
    assert field in found, found
    assert expected in found[field]


def test_all_known_models_are_listed_in_the_error() -> None:
    message = errors_of(raw(models="arima,nope"))["model_parameters.models"]
    assert all(name in message for name in KNOWN_MODELS)


@pytest.mark.parametrize(
    ("section", "values", "field", "expected"),
    [
        (
            "input_parameters",
            {"frequency": "fortnightly"},
            "input_parameters.frequency",
            "not a pandas frequency",
        ),
        (
            "input_parameters",
            {"dateparser_options": {"format": "%Y"}},
            "input_parameters.dateparser_options",
            "unknown dateparser.parse option",
        ),
        ("input_parameters", {"timeseries_names": ["a"]}, "input_parameters.timeseries_names", "dictionary"),
        (
            "input_parameters",
            {"datetime_column_name": "d", "index_column_name": "e"},
            "input_parameters.index_column_name",
            "differs from datetime_column_name",
        ),
        ("input_parameters", {"source_data_url": ""}, "input_parameters.source_data_url", "at least 1"),
        (
            "selection_parameters",
            {"column_name_selection": "region"},
            "selection_parameters.value_selection",
            "must be given together",
        ),
        ("", {"max_threads": 0}, "max_threads", "greater than or equal to 1"),
    ],
)
def test_input_errors_name_the_field(section: str, values: dict, field: str, expected: str) -> None:
    data = raw()
    target = data.setdefault(section, {}) if section else data
    target.update(values)
    found = errors_of(data)
    assert field in found, found
    assert expected in found[field]


def test_missing_sections_and_several_errors_at_once() -> None:
    found = errors_of({"input_parameters": {}, "model_parameters": {"models": "x", "test_values": -1}})
    assert found["input_parameters.source_data_url"] == "required field is missing"
    assert {"model_parameters.models", "model_parameters.test_values"} <= set(found)
    assert (
        errors_of({"input_parameters": {"source_data_url": "a"}})["model_parameters"]
        == "required field is missing"
    )


def test_not_json_and_not_object() -> None:
    assert "not valid JSON" in errors_of("{nope")[""]
    assert "expected a JSON object" in errors_of(b"[1, 2]")[""]


def test_error_text_is_readable() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(raw(models="prophett"))
    assert "model_parameters.models: unknown model 'prophett'" in str(info.value)


def test_unknown_keys_are_kept_and_reported() -> None:
    data = raw(mockup_confidence=True)
    data["colour"] = "blue"
    data["fbprophet_parameters"] = {"holiday_country": "IT", "changepoint_prior_scale": 0.1}
    data["input_parameters"]["proxy"] = "p"
    parsed = parse_config(data)
    assert any(w.startswith("colour: unknown key") for w in parsed.warnings)
    assert any(w.startswith("input_parameters.proxy: unknown key") for w in parsed.warnings)
    assert any(w.startswith("model_parameters.mockup_confidence") for w in parsed.warnings)
    # At the top level TIMEX does not read it (only inside model_parameters): said so, not "used".
    assert "fbprophet_parameters: TIMEX reads it inside model_parameters; here it is kept but not used" \
        in parsed.warnings
    again = json.loads(parsed.config.to_json())
    assert again["colour"] == "blue" and again["input_parameters"]["proxy"] == "p"


def test_timex_aliases_and_precedence() -> None:
    cfg = parse_config(raw(validation_values=4, forecast_horizon=3)).config
    assert (cfg.model_parameters.test_values, cfg.model_parameters.prediction_lags) == (4, 3)
    # TIMEX 1.2.3's PredictionModel: a percentage wins over a number of values; validation_* over test_*.
    parsed = parse_config(raw(test_values=4, test_percentage=20))
    assert parsed.config.model_parameters.test_values is None
    assert parsed.config.model_parameters.test_percentage == 20
    assert parsed.config.model_parameters.test_size(50) == 10
    assert any("test_values: not used because test_percentage is given" in w for w in parsed.warnings)
    both = parse_config(raw(validation_values=5, test_values=4)).config.model_parameters
    assert (both.test_values, both.test_percentage) == (5, None)


def test_timex_keywords_not_offered_here_are_refused_in_plain_words() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(raw(possible_transformations="none,diff"))
    assert "transformation 'diff' is not offered" in str(info.value)
    data = raw()
    data["xcorr_parameters"] = {"xcorr_max_lags": 3, "xcorr_extra_regressor_threshold": 0.5, "xcorr_mode": "granger"}
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    assert "mode 'granger' (TIMEX 1.2.3's Granger causality tests) is not offered" in str(info.value)


def test_timex_holiday_files_are_refused_in_plain_words() -> None:
    data = raw()
    data["model_parameters"]["fbprophet_parameters"] = {"holidays_dataframes": {"date_format": "%Y-%m-%d",
                                                                                "a": "holidays.csv"}}
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    assert "model_parameters.fbprophet_parameters.holidays_dataframes: holiday CSV files are not read here" \
        in str(info.value)


def test_selection_inside_input_parameters_is_accepted() -> None:
    data = raw()
    data["input_parameters"]["selection_parameters"] = {"init_datetime": "2020-01-01"}
    cfg = parse_config(data).config
    assert cfg.selection_parameters is not None and cfg.selection_parameters.init_datetime == "2020-01-01"


def test_normalized_config_round_trips_and_stays_timex_shaped() -> None:
    data = raw(
        models="ARIMA,fbprophet",
        possible_transformations="none,yeo_johnson",
        test_percentage=15,
        round_to_integer="a",
        extra_thing=[1, 2],
    )
    data["input_parameters"].update({"columns_to_load_from_url": "d,a", "frequency": "D"})
    data["visualization_parameters"] = {"language": "it"}
    cfg = parse_config(data).config
    text = cfg.to_json()
    shipped = json.loads(text)
    assert shipped["model_parameters"]["models"] == "arima,fbprophet"  # comma string, as TIMEX reads it
    assert shipped["input_parameters"]["columns_to_load_from_url"] == "d,a"
    again = parse_config(text).config
    assert again == cfg
    assert again.to_json() == text


def test_visualization_parameters_default_to_english_and_a_zero_graph_threshold() -> None:
    assert parse_config(raw()).config.visualization_parameters.for_charts() == {
        "language": "en", "xcorr_graph_threshold": 0.0, "box_plot_frequency": "1W",
        "aggregate_box_plot_frequency": "weekday"}  # TIMEX's defaults
    data = raw()
    data["visualization_parameters"] = {"language": "IT", "xcorr_graph_threshold": "0.6", "box_plot_frequency": "3M",
                                        "aggregate_box_plot_frequency": "month"}
    parsed = parse_config(data)
    assert parsed.config.visualization_parameters.for_charts() == {
        "language": "it", "xcorr_graph_threshold": 0.6, "box_plot_frequency": "3M",
        "aggregate_box_plot_frequency": "month"}
    assert not parsed.warnings
    data["visualization_parameters"] = {"box_plot_frequency": "5D", "aggregate_box_plot_frequency": "fortnight"}
    assert errors_of(data) == {
        "visualization_parameters.box_plot_frequency": "'5D' is not a period of the box plot; use one of 1W, 2W, 1M, "
                                                       "3M, 4M, 6M, 1Y",
        "visualization_parameters.aggregate_box_plot_frequency": "'fortnight' is not a grouping of the aggregate box "
                                                                 "plot; use one of minute, hour, weekday, day, month, "
                                                                 "year"}


@pytest.mark.parametrize("section, field, words", [
    ({"language": "fr"}, "visualization_parameters.language", "use one of en, it"),
    ({"xcorr_graph_threshold": 1.5}, "visualization_parameters.xcorr_graph_threshold", "less than or equal to 1"),
])
def test_bad_visualization_parameters_are_named(section: dict, field: str, words: str) -> None:
    data = raw()
    data["visualization_parameters"] = section
    with pytest.raises(ConfigError) as err:
        parse_config(data)
    assert [e.field for e in err.value.errors] == [field] and words in str(err.value)


def test_arima_seasonal_is_shipped_only_when_given() -> None:
    """The services read the normalized config: the option must survive it, and configs without it must
    normalize as before (their answers unchanged)."""
    plain = parse_config(raw()).config
    assert plain.model_parameters.arima_seasonal is None
    assert "arima_seasonal" not in json.loads(plain.to_json())["model_parameters"]
    timex = parse_config(raw(arima_seasonal=False)).config
    again = parse_config(timex.to_json()).config
    assert again.model_parameters.arima_seasonal is False
    assert parse_config(raw(arima_seasonal=False)).warnings == []  # a key of this system, not "unknown"


def test_verbose_is_a_log_level() -> None:
    assert parse_config({**raw(), "verbose": "debug"}).config.verbose == "debug"  # any case, as logging reads it
    assert errors_of({**raw(), "verbose": "loud"}) == {
        "verbose": "expected a log level, one of DEBUG, INFO, WARNING, ERROR, CRITICAL; got 'loud'"}
