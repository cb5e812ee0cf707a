/* The unit suites, one per module; check_unit.c runs them all. */
#ifndef ODS_SUITES_H
#define ODS_SUITES_H

#include <check.h>

Suite *config_suite(void);
Suite *csv_suite(void);
Suite *ndjson_suite(void);
Suite *auth_suite(void);
Suite *log_suite(void);
Suite *cdc_batch_suite(void);
Suite *pgoutput_suite(void);

#endif
