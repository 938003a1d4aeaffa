"""TIMEX Stream forecasting core: pure Python, no Kafka, no web.

Given a TIMEX (`timexseries` 1.2.x) JSON config and CSV bytes it gives, per series, every requested
model's validation result and the best model with its forecast.

    parsed = forecasting.config.parse_config(raw)          # ConfigError lists every bad field
    data = forecasting.data.load_series(parsed.config, csv_bytes)
    for name, series in data.series.items():
        units = forecasting.units.plan_units(parsed.config, series)
        results = [forecasting.units.run_unit(parsed.config, series, u) for u in units]  # any order/machine
        choice = forecasting.selection.choose_best(parsed.config, results)

Validation semantics (as TIMEX 1.2.3):
- the last `test_values` points (else round(len × test_percentage / 100), default 10 %) are held out;
- training windows are the last k × delta points before them, delta = round(len × delta_training_percentage
  / 100), k = 1, 2, ... up to the whole training part (windows under 5 points are skipped);
- every (model, transformation, window) unit is fitted on its window (transformation fitted there too),
  forecasts the held-out points, which are clipped (min_values/max_values, `_all` for every series) and
  rounded (round_to_integer) before scoring: MAE, MSE, RMSE, AM = mean(actual - predicted),
  SD = population std of those errors (TIMEX's definitions), plus MAPE, sMAPE, MASE;
- per model the best (transformation, window) by `main_accuracy_estimator`; per series the best model;
  ties break by config order, then the smaller window;
- the final forecast refits the best window extended by the test points and forecasts `prediction_lags`
  steps, with 80 % and 95 % intervals where the model has them, clipped and rounded the same way.
- historical predictions (`historical_prediction_parameters`): forecasting.historical.

Deviations from TIMEX: `arima` is statsforecast's AutoARIMA (stepwise, AICc) instead of pmdarima's, with d
from pmdarima's KPSS test; where a series has two full seasons that statsforecast's seasonal-strength test
calls seasonal, the search includes seasonal terms (P, Q <= 1) where TIMEX's is non-seasonal
(`forecasting.models.statsforecast_models.AutoARIMA`); `exponentialsmoothing` picks its seasonal period as
TIMEX does (the up to ten strongest ACF lags, each scored on a 10 % hold-out) but always scores by MAE
(`forecasting.models.exponential_smoothing`); `log` is the plain logarithm (TIMEX's maps |x| <= 1 to 0 and
cannot be inverted); duplicate timestamps are averaged (TIMEX keeps the last); dates outside 1677-2262 work.
"""
