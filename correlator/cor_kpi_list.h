/* cor_kpi_list.h -- the KPIs of design.md ("KPIs"), declared once.
 *
 * Every output (the KPI record JSON, the monthly CSV, Prometheus /metrics, the
 * dashboard, pasban.kpi) is generated from this list, so a KPI added here shows
 * up everywhere with the same name. No include guard: it only defines macros.
 *
 * X(name, kind, family, label, help)
 *   name    JSON key and CSV column
 *   kind    COUNT (integer), PCT (0..100, 2 decimals), SECONDS (3 decimals)
 *   family  Prometheus metric name after the "pasban_kpi_" prefix; entries of one
 *           family are adjacent and differ by label
 *   label   extra Prometheus label pair ("" for none)
 *   help    one line for # HELP and the README
 *
 * Severity and category counts are fixed lists (the five severities of rules and
 * the eleven classes of the ENISA Reference Security Incident Taxonomy), so the
 * CSV has the same columns every month.
 */
#ifndef COR_KPI_LIST
#define COR_KPI_LIST(X)                                                                            \
    X(events_ingested, COUNT, "events", "", "Events received from the operator in the period")     \
    X(parse_failures, COUNT, "parse_failures", "",                                                 \
      "Events that could not be parsed (event.kind pipeline_error)")                               \
    X(sources_designated, COUNT, "sources_designated", "",                                         \
      "Sources the operator must send logs from (configuration)")                                  \
    X(sources_reporting, COUNT, "sources_reporting", "",                                           \
      "Designated sources with an event in the last 24 h of event time of the period")             \
    X(coverage_pct, PCT, "coverage_percent", "", "sources_reporting / sources_designated * 100")   \
    X(incidents, COUNT, "incidents", "", "Incidents first seen in the period")                     \
    X(incidents_info, COUNT, "incidents_by_severity", "severity=\"info\"",                         \
      "Incidents by severity")                                                                     \
    X(incidents_low, COUNT, "incidents_by_severity", "severity=\"low\"", "Incidents by severity")  \
    X(incidents_medium, COUNT, "incidents_by_severity", "severity=\"medium\"",                     \
      "Incidents by severity")                                                                     \
    X(incidents_high, COUNT, "incidents_by_severity", "severity=\"high\"",                         \
      "Incidents by severity")                                                                     \
    X(incidents_critical, COUNT, "incidents_by_severity", "severity=\"critical\"",                 \
      "Incidents by severity")                                                                     \
    X(cat_abusive_content, COUNT, "incidents_by_category", "category=\"abusive-content\"",         \
      "Incidents by RSIT class")                                                                   \
    X(cat_malicious_code, COUNT, "incidents_by_category", "category=\"malicious-code\"",           \
      "Incidents by RSIT class")                                                                   \
    X(cat_information_gathering, COUNT, "incidents_by_category",                                   \
      "category=\"information-gathering\"", "Incidents by RSIT class")                             \
    X(cat_intrusion_attempts, COUNT, "incidents_by_category", "category=\"intrusion-attempts\"",   \
      "Incidents by RSIT class")                                                                   \
    X(cat_intrusions, COUNT, "incidents_by_category", "category=\"intrusions\"",                   \
      "Incidents by RSIT class")                                                                   \
    X(cat_availability, COUNT, "incidents_by_category", "category=\"availability\"",               \
      "Incidents by RSIT class")                                                                   \
    X(cat_information_content_security, COUNT, "incidents_by_category",                            \
      "category=\"information-content-security\"", "Incidents by RSIT class")                      \
    X(cat_fraud, COUNT, "incidents_by_category", "category=\"fraud\"", "Incidents by RSIT class")  \
    X(cat_vulnerable, COUNT, "incidents_by_category", "category=\"vulnerable\"",                   \
      "Incidents by RSIT class")                                                                   \
    X(cat_other, COUNT, "incidents_by_category", "category=\"other\"",                             \
      "Incidents by RSIT class (unknown classes count here)")                                      \
    X(cat_test, COUNT, "incidents_by_category", "category=\"test\"", "Incidents by RSIT class")    \
    X(open_incidents, COUNT, "open_incidents", "",                                                 \
      "Incidents of the period neither resolved nor false positive")                               \
    X(mttd_s, SECONDS, "mttd_seconds", "", "Mean time to detect: detected_at - first_seen")        \
    X(mtta_s, SECONDS, "mtta_seconds", "", "Mean time to acknowledge: first update - detected_at") \
    X(mttc_s, SECONDS, "mttc_seconds", "", "Mean time to contain: contained - detected_at")        \
    X(mttr_s, SECONDS, "mttr_seconds", "", "Mean time to resolve: resolved - detected_at")         \
    X(resolved_within_sla_pct, PCT, "resolved_within_sla_percent", "",                             \
      "Incidents (not false positives) resolved within the SLA of their severity")                 \
    X(reportable, COUNT, "reportable", "",                                                         \
      "Incidents (not false positives) at or above the reporting severity")                        \
    X(reported_in_time_pct, PCT, "reported_in_time_percent", "",                                   \
      "Reportable incidents reported to the national CERT within the reporting window")            \
    X(false_positives, COUNT, "false_positives", "", "Incidents marked false positive")            \
    X(false_positive_pct, PCT, "false_positive_percent", "", "false_positives / incidents * 100")  \
    X(detection_latency_p50_s, SECONDS, "detection_latency_p50_seconds", "",                       \
      "Correlator latency, event received to incident produced")                                   \
    X(detection_latency_p99_s, SECONDS, "detection_latency_p99_seconds", "",                       \
      "Correlator latency, event received to incident produced")
#endif
