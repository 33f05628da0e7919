/* Private to services/metrics*.c. */
#pragma once

#include <stdio.h>

struct manager;

/* A label value, escaped as the text format wants (\\, \", \n). */
void metrics_label(FILE *f, const char *v);
/* The # HELP and # TYPE lines of a family. */
void metrics_head(FILE *f, const char *name, const char *type, const char *help);
/* Backends, hosts and VMs, read now (metrics_gauges.c). -EIO, -ENOMEM. */
int metrics_gauges(struct manager *m, FILE *f);
