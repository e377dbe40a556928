# What the functions log, counted and charted, and the alerts that watch it. Every link ends with
# one log line whose `event` is link.done, link.queued, link.rejected or link.failed: one metric
# counts them, another takes the latency of those that reached Tulip. A dashboard charts them
# with Pub/Sub's and Cloud Run's own metrics; each alert's documentation links to its section
# of the runbook (docs/runbook.md).

locals {
  # The functions' names are known before they exist, so the metrics do not wait for them and
  # are created early in a first apply; what reads them waits below.
  function_services = join(" OR ", [for key in keys(local.functions) : "\"${var.name_prefix}-${key}\""])
  # Each alert's text reads "Runbook: <runbook_url, or docs/runbook.md in the repository>#<section>".
  runbook = var.runbook_url != "" ? var.runbook_url : "docs/runbook.md"
}

resource "google_logging_metric" "link_outcomes" {
  name        = "${var.name_prefix}/link_outcomes"
  description = "tulip-link links, by how they ended: done, queued (queue mode's webhook), rejected (the request or its values) or failed (we or Tulip could not do it now)."
  filter      = <<-EOT
    resource.type="cloud_run_revision"
    resource.labels.service_name=(${local.function_services})
    jsonPayload.event=("link.done" OR "link.queued" OR "link.failed" OR "link.rejected")
  EOT

  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "INT64"
    unit        = "1"

    labels {
      key         = "event"
      value_type  = "STRING"
      description = "link.done, link.queued, link.failed or link.rejected"
    }
    labels {
      key         = "error_code"
      value_type  = "STRING"
      description = "The answer's errorCode"
    }
    labels {
      key         = "function"
      value_type  = "STRING"
      description = "The function that answered"
    }
    labels {
      key         = "sender"
      value_type  = "STRING"
      description = "The sender the link came from (its webhook's WEBHOOK_SENDER; empty for messages published by others)"
    }
  }

  label_extractors = {
    event      = "EXTRACT(jsonPayload.event)"
    error_code = "EXTRACT(jsonPayload.errorCode)"
    function   = "EXTRACT(resource.labels.service_name)"
    sender     = "EXTRACT(jsonPayload.sender)"
  }

  depends_on = [google_project_service.enabled]
}

# The requests that called Tulip (their lines count `attempts`): how long they took, Tulip's
# answers with their retries and waits.
resource "google_logging_metric" "tulip_latency" {
  name            = "${var.name_prefix}/tulip_latency"
  description     = "tulip-link requests that reached Tulip: their latencyMs, Tulip's answers with retries and waits."
  value_extractor = "EXTRACT(jsonPayload.latencyMs)"
  filter          = <<-EOT
    resource.type="cloud_run_revision"
    resource.labels.service_name=(${local.function_services})
    jsonPayload.event=("link.done" OR "link.failed" OR "link.rejected")
    jsonPayload.attempts>=1
    jsonPayload.latencyMs>=0
  EOT

  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "DISTRIBUTION"
    unit        = "ms"
  }

  # 10 ms doubling to about 80 s: past every deadline this function allows.
  bucket_options {
    exponential_buckets {
      num_finite_buckets = 14
      growth_factor      = 2
      scale              = 10
    }
  }

  depends_on = [google_project_service.enabled]
}

# A new log-based metric is not at once usable in an alert: "Cannot find metric(s) ... it could
# take up to 10 minutes to become available" (terraform-provider-google#11102, still open). The
# alert and the dashboard wait; should the alert still meet the 404, a second apply creates it.
resource "time_sleep" "metric_available" {
  create_duration = "${var.metric_propagation_seconds}s"

  depends_on = [google_logging_metric.link_outcomes, google_logging_metric.tulip_latency]
}

resource "google_monitoring_dashboard" "overview" {
  dashboard_json = templatefile("${path.module}/dashboard.json.tftpl", {
    name_prefix   = var.name_prefix
    stuck_seconds = var.stuck_message_seconds
    # The functions' Cloud Run services, as a monitoring filter's one_of() takes them.
    services = join(", ", [for key in keys(local.functions) : "\\\"${var.name_prefix}-${key}\\\""])
  })

  depends_on = [time_sleep.metric_available]
}

resource "google_monitoring_alert_policy" "link_failures" {
  display_name          = "${var.name_prefix}: links failing"
  combiner              = "OR"
  notification_channels = var.notification_channels
  user_labels           = var.labels

  conditions {
    display_name = "link.failed in the last 5 minutes"
    condition_threshold {
      filter          = "resource.type = \"cloud_run_revision\" AND metric.type = \"logging.googleapis.com/user/${google_logging_metric.link_outcomes.name}\" AND metric.labels.event = \"link.failed\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"
      aggregations {
        alignment_period   = "300s"
        per_series_aligner = "ALIGN_SUM"
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "tulip-link could not link records (Tulip unreachable, rate limited or refusing our token, Secret Manager failing, Pub/Sub refusing the webhook, or bad settings). The log lines with `jsonPayload.event=\"link.failed\"` say which (`errorCode`, `tulipErrorUniqueID`). Runbook: ${local.runbook}#links-failing"
  }

  depends_on = [time_sleep.metric_available]
}

resource "google_monitoring_alert_policy" "dead_letters" {
  display_name          = "${var.name_prefix}: messages in the dead-letter subscription"
  combiner              = "OR"
  notification_channels = var.notification_channels
  user_labels           = var.labels

  conditions {
    display_name = "Undelivered dead letters > 0"
    condition_threshold {
      filter          = "resource.type = \"pubsub_subscription\" AND resource.labels.subscription_id = \"${google_pubsub_subscription.dead_letter.name}\" AND metric.type = \"pubsub.googleapis.com/subscription/num_undelivered_messages\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"
      aggregations {
        alignment_period   = "60s"
        per_series_aligner = "ALIGN_MAX"
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "Messages that need a person wait in `${google_pubsub_subscription.dead_letter.name}`: refused for good by Tulip or as invalid (each with its `errorCode` and `deadLetterReason`), or, after ${var.max_delivery_attempts} deliveries over many hours, given up by Pub/Sub. List them (`python -m ops.dead_letters list`), fix the cause, then replay them. Runbook: ${local.runbook}#dead-letters"
  }

  depends_on = [google_project_service.enabled]
}

# Ordering holds a pair's later messages behind one that keeps failing, and a push that cannot
# be delivered at all (the invoker's grant, the events function down) holds everything: either
# shows as an old unacknowledged message, long before anything is dead-lettered.
resource "google_monitoring_alert_policy" "messages_stuck" {
  count                 = var.use_eventarc_trigger ? 0 : 1
  display_name          = "${var.name_prefix}: messages stuck in the queue"
  combiner              = "OR"
  notification_channels = var.notification_channels
  user_labels           = var.labels

  conditions {
    display_name = "Oldest unacknowledged message older than ${var.stuck_message_seconds} s"
    condition_threshold {
      filter          = "resource.type = \"pubsub_subscription\" AND resource.labels.subscription_id = \"${google_pubsub_subscription.push[0].name}\" AND metric.type = \"pubsub.googleapis.com/subscription/oldest_unacked_message_age\""
      comparison      = "COMPARISON_GT"
      threshold_value = var.stuck_message_seconds
      duration        = "300s"
      aggregations {
        alignment_period   = "60s"
        per_series_aligner = "ALIGN_MAX"
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "A message has waited in `${google_pubsub_subscription.push[0].name}` for more than ${var.stuck_message_seconds} s without being acknowledged: the events function keeps failing it (and its pair's later messages wait behind it), or cannot be reached at all. Runbook: ${local.runbook}#messages-stuck"
  }

  depends_on = [google_project_service.enabled]
}

# The Eventarc variant's subscription is Google's, with no dead-letter policy: the events
# function dead-letters what needs a person itself. A message it could not even read for that
# (an unreadable wrapping) is logged once, whole, and acked: this alert is its dead letter.
resource "google_monitoring_alert_policy" "eventarc_dropped" {
  count                 = var.use_eventarc_trigger ? 1 : 0
  display_name          = "${var.name_prefix}: messages dropped by the Eventarc trigger"
  combiner              = "OR"
  notification_channels = var.notification_channels
  user_labels           = var.labels

  conditions {
    display_name = "link.rejected and acked by the events function"
    condition_matched_log {
      filter = <<-EOT
        resource.type="cloud_run_revision"
        resource.labels.service_name="${var.name_prefix}-events"
        jsonPayload.event="link.rejected"
        jsonPayload.acked=true
      EOT
    }
  }

  alert_strategy {
    notification_rate_limit {
      period = "300s"
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "The Eventarc trigger delivered a message the events function could neither link nor dead-letter (its Pub/Sub wrapping unreadable); it was acked, and its log line (`jsonPayload.acked=true`) holds it whole in `messageData` and `messageAttributes`. Refusals are in the dead-letter subscription instead (the dead letters alert). Fix the cause, then publish that data again to the requests topic. Runbook: ${local.runbook}#messages-dropped-by-the-eventarc-trigger"
  }

  depends_on = [google_project_service.enabled]
}
