# Every request ends with one log line whose `event` is link.done, link.rejected or link.failed.
# The metric counts the last two; the alerts fire on failures and on any dead letter.

# The functions' names are known before they exist: the metric does not wait for them, so it is
# created early in a first apply, and the alert that reads it waits below.
resource "google_logging_metric" "link_problems" {
  name        = "${var.name_prefix}/link_problems"
  description = "tulip-link requests that ended rejected (the request or its values) or failed (we or Tulip could not do it now)."
  filter      = <<-EOT
    resource.type="cloud_run_revision"
    resource.labels.service_name=(${join(" OR ", [for key in keys(local.functions) : "\"${var.name_prefix}-${key}\""])})
    jsonPayload.event=("link.failed" OR "link.rejected")
  EOT

  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "INT64"
    unit        = "1"

    labels {
      key         = "event"
      value_type  = "STRING"
      description = "link.failed or link.rejected"
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
  }

  label_extractors = {
    event      = "EXTRACT(jsonPayload.event)"
    error_code = "EXTRACT(jsonPayload.errorCode)"
    function   = "EXTRACT(resource.labels.service_name)"
  }

  depends_on = [google_project_service.enabled]
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
    content   = "Link requests gave up after ${var.max_delivery_attempts} deliveries and wait in `${google_pubsub_subscription.dead_letter.name}`. Read their reason in the logs (`jsonPayload.messageId`), fix the cause, then replay them: see infra/README.md, \"Dead letters\"."
  }

  depends_on = [google_project_service.enabled]
}

# A new log-based metric is not at once usable in an alert: "Cannot find metric(s) ... it could
# take up to 10 minutes to become available" (terraform-provider-google#11102, still open). The
# alert waits; should it still meet the 404, a second `terraform apply` creates it.
resource "time_sleep" "metric_available" {
  create_duration = "${var.metric_propagation_seconds}s"

  depends_on = [google_logging_metric.link_problems]
}

resource "google_monitoring_alert_policy" "link_failures" {
  display_name          = "${var.name_prefix}: links failing"
  combiner              = "OR"
  notification_channels = var.notification_channels
  user_labels           = var.labels

  conditions {
    display_name = "link.failed in the last 5 minutes"
    condition_threshold {
      filter          = "resource.type = \"cloud_run_revision\" AND metric.type = \"logging.googleapis.com/user/${google_logging_metric.link_problems.name}\" AND metric.labels.event = \"link.failed\""
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
    content   = "tulip-link could not link records (Tulip unreachable, rate limited or refusing our token, Secret Manager failing, or bad settings). The log lines with `jsonPayload.event=\"link.failed\"` say which (`errorCode`, `tulipErrorUniqueID`)."
  }

  depends_on = [time_sleep.metric_available]
}

# The Eventarc variant cannot dead-letter through Terraform (its subscription is Google's), so a
# message that can never succeed is logged once, whole, and acked: this alert is its dead letter.
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
    content   = "The Eventarc trigger delivered a message that can never succeed (undecodable, invalid, or refused by Tulip with 400/409/422); it was acked, and its log line (`jsonPayload.acked=true`) holds it whole in `messageData` and `messageAttributes`. Fix the cause, then publish that data again to the requests topic."
  }

  depends_on = [google_project_service.enabled]
}
