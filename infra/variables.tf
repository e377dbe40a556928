variable "project_id" {
  type        = string
  description = "The Google Cloud project to deploy into."

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a project id (6 to 30 lower-case letters, digits and hyphens)."
  }
}

variable "region" {
  type        = string
  description = "Region of the functions, the source bucket, the image repository and the Eventarc trigger."
  default     = "europe-west1"

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]+$", var.region))
    error_message = "region must be a Google Cloud region such as europe-west1."
  }
}

variable "name_prefix" {
  type        = string
  description = "Prefix of every resource name (functions, topics, secrets, service accounts)."
  default     = "tulip-link"

  validation {
    # Service account ids are at most 30 characters: the prefix plus "-invoker" must fit.
    condition     = can(regex("^[a-z][a-z0-9-]{2,19}[a-z0-9]$", var.name_prefix))
    error_message = "name_prefix must be 4 to 21 lower-case letters, digits and hyphens, starting with a letter."
  }
}

variable "deployer" {
  type        = string
  description = "Who runs terraform apply, as an IAM member (user:you@acme.com, serviceAccount:ci@PROJECT.iam.gserviceaccount.com): granted Service Account User on this deployment's own accounts only, which deploying them needs. Empty: the deployer already has it (a project Owner)."
  default     = ""

  validation {
    condition     = var.deployer == "" || can(regex("^(user|serviceAccount|group|principal):.+$", var.deployer))
    error_message = "deployer must be empty or an IAM member such as user:you@acme.com or serviceAccount:ci@PROJECT.iam.gserviceaccount.com."
  }
}

variable "labels" {
  type        = map(string)
  description = "Labels added to every resource that takes labels."
  default     = {}

  validation {
    condition     = alltrue([for k, v in var.labels : can(regex("^[a-z][a-z0-9_-]{0,62}$", k)) && can(regex("^[a-z0-9_-]{0,63}$", v))])
    error_message = "Label keys and values must be lower-case letters, digits, _ and - (keys start with a letter)."
  }
}

# --- What the function calls ---------------------------------------------------------------------

variable "tulip_base_url" {
  type        = string
  description = "Your Tulip instance, e.g. https://acme.tulip.co (scheme and host only)."

  validation {
    condition     = can(regex("^https://[A-Za-z0-9.-]+(:[0-9]+)?/?$", var.tulip_base_url))
    error_message = "tulip_base_url must be https://host, e.g. https://acme.tulip.co."
  }
}

variable "tulip_workspace_id" {
  type        = string
  description = "Workspace id for account-level API tokens (calls go to /api/v3/w/{id}/...); empty for a workspace token."
  default     = ""

  validation {
    condition     = can(regex("^[^[:space:]]*$", var.tulip_workspace_id))
    error_message = "tulip_workspace_id must not contain spaces."
  }
}

variable "tulip_table_link_id" {
  type        = string
  description = "Table link used when a request names none; empty to require tableLinkId in every request."
  default     = ""

  validation {
    condition     = var.tulip_table_link_id == "" || can(regex("^[a-zA-Z0-9_]{1,64}$", var.tulip_table_link_id))
    error_message = "tulip_table_link_id must match ^[a-zA-Z0-9_]+$ (at most 64 characters)."
  }
}

variable "tulip_allowed_table_link_ids" {
  type        = list(string)
  description = "If not empty, the only table links requests may name."
  default     = []

  validation {
    condition     = alltrue([for id in var.tulip_allowed_table_link_ids : can(regex("^[a-zA-Z0-9_]{1,64}$", id))])
    error_message = "Every allowed table link id must match ^[a-zA-Z0-9_]+$ (at most 64 characters)."
  }
}

variable "secret_cache_ttl_seconds" {
  type        = number
  description = "How long each instance keeps a value read from Secret Manager (Tulip token, webhook secret)."
  default     = 300

  validation {
    condition     = var.secret_cache_ttl_seconds >= 0 && var.secret_cache_ttl_seconds <= 86400
    error_message = "secret_cache_ttl_seconds must be between 0 and 86400."
  }
}

variable "tulip_deadline_seconds" {
  type        = number
  description = "Everything one request may take (Secret Manager and Tulip retries included); below function_timeout_seconds."
  default     = 30

  validation {
    condition     = var.tulip_deadline_seconds >= 1 && var.tulip_deadline_seconds <= 590
    error_message = "tulip_deadline_seconds must be between 1 and 590."
  }
}

# --- Senders -------------------------------------------------------------------------------------

variable "senders" {
  type        = any
  description = "The third-party systems that post webhooks, by name (a short id: 1 to 20 lower-case letters, digits and hyphens; it names the sender's function, URL, secret and account). Each gets its own webhook function and signing secret, and all feed the one requests topic. Each takes, all optional: auth (standard-webhooks, hmac-sha256, slack, stripe, token, basic or none), signature_header, token_header, allowed_origins, tolerance_seconds, link_mapping, delivery (queue or direct), tulip_dry_runs (false), public (true), invokers (with public = false), max_body_bytes (26214400: 25 MiB), memory (sized from max_body_bytes when left out). Empty: one sender named \"webhook\", from the webhook_* variables below. See \"Several senders\" in infra/README.md."
  default     = {}

  # The type is `any` so that a misspelled setting is an error here: with an object type,
  # Terraform would drop an unknown attribute without a word. modules/senders types and checks
  # the values; its type and the list of settings below name the same ones (tests/test_senders.py).
  validation {
    condition     = can(keys(var.senders)) && try(alltrue([for _, s in var.senders : can(keys(s))]), false)
    error_message = "senders must be a map of objects: senders = { mes = { auth = \"standard-webhooks\" }, ... }."
  }
  validation {
    condition     = alltrue([for _, given in try({ for name, s in var.senders : name => try(keys(s), []) }, {}) : length(setsubtract(given, ["auth", "signature_header", "token_header", "allowed_origins", "tolerance_seconds", "link_mapping", "delivery", "tulip_dry_runs", "public", "invokers", "max_body_bytes", "memory"])) == 0])
    error_message = format("Sender %s: unknown setting. A sender takes auth, signature_header, token_header, allowed_origins, tolerance_seconds, link_mapping, delivery, tulip_dry_runs, public, invokers, max_body_bytes and memory.", join(", ", [for name, given in try({ for name, s in var.senders : name => try(keys(s), []) }, {}) : format("%q (%s)", name, join(", ", setsubtract(given, ["auth", "signature_header", "token_header", "allowed_origins", "tolerance_seconds", "link_mapping", "delivery", "tulip_dry_runs", "public", "invokers", "max_body_bytes", "memory"]))) if length(setsubtract(given, ["auth", "signature_header", "token_header", "allowed_origins", "tolerance_seconds", "link_mapping", "delivery", "tulip_dry_runs", "public", "invokers", "max_body_bytes", "memory"])) > 0]))
  }
}

# --- The one sender while `senders` is empty (each is also a sender's setting there) -------------

variable "webhook_max_body_bytes" {
  type        = number
  description = "MAX_BODY_BYTES of the webhook function: the largest body it accepts. The default, 25 MiB, is the cap GitHub and GitLab document for their payloads; the function's memory is sized to hold it (see memory)."
  default     = 26214400

  validation {
    condition     = var.webhook_max_body_bytes >= 1024 && var.webhook_max_body_bytes <= 33554432
    error_message = "webhook_max_body_bytes must be between 1024 and 33554432 (32 MiB, Cloud Run's largest request)."
  }
}

variable "webhook_public" {
  type        = bool
  description = "Let anyone on the internet invoke the webhook function (allUsers); it must then verify signatures."
  default     = true
}

variable "webhook_invokers" {
  type        = list(string)
  description = "With webhook_public = false: the principals that may call the webhook (roles/run.invoker on it), e.g. serviceAccount:mes@acme-mes.iam.gserviceaccount.com. Ignored while the webhook is public."
  default     = []

  validation {
    condition     = alltrue([for m in var.webhook_invokers : can(regex("^(serviceAccount|user|group|domain|principal|principalSet):.+$", m))])
    error_message = "Each webhook invoker must be an IAM member such as serviceAccount:NAME@PROJECT.iam.gserviceaccount.com, user:EMAIL or group:EMAIL."
  }
}

variable "secret_locations" {
  type        = list(string)
  description = "Regions Secret Manager keeps the secrets' replicas in (user-managed replication). Null: the deployment's region. An empty list: automatic replication, which needs the global location that the gcp.resourceLocations organization policy often forbids. Read when a secret is created; an existing secret keeps its replication."
  default     = null

  validation {
    condition     = var.secret_locations == null || alltrue([for r in coalesce(var.secret_locations, []) : can(regex("^[a-z]+-[a-z]+[0-9]+$", r))])
    error_message = "secret_locations must be null, an empty list, or regions such as europe-west1."
  }
}

variable "webhook_auth" {
  type        = string
  description = "How the webhook function authenticates callers: standard-webhooks, hmac-sha256, slack, stripe, token, basic, or none (private only). docs/senders.md names each common sender's."
  default     = "standard-webhooks"

  validation {
    condition     = contains(["standard-webhooks", "hmac-sha256", "slack", "stripe", "token", "basic", "none"], var.webhook_auth)
    error_message = "webhook_auth must be one of standard-webhooks, hmac-sha256, slack, stripe, token, basic, none."
  }
}

variable "dedup" {
  type        = bool
  description = "Each delivery applied once: the webhook functions remember every delivery they accepted (by its sender's delivery id) in a Firestore database of this deployment's own, and answer one sent again `duplicate` (docs/operations.md). False: nothing is remembered, no database is made."
  default     = true
}

variable "webhook_delivery" {
  type        = string
  description = "What the webhook function does with a request that passed every check: queue (publish its links to the requests topic and answer 202 at once; the events function calls Tulip, with Pub/Sub's retries and dead letters behind it) or direct (call Tulip while the sender waits, and answer with Tulip's result)."
  default     = "queue"

  validation {
    condition     = contains(["queue", "direct"], var.webhook_delivery)
    error_message = "webhook_delivery must be queue or direct."
  }
}

variable "webhook_tulip_dry_runs" {
  type        = bool
  description = "Queue mode: let the webhook function's dry runs ask Tulip (its account may then read the Tulip token). False: a dry run checks everything but Tulip, and its answer says so (tulipChecked false); the token stays with the events function. Direct mode reads the token regardless."
  default     = false
}

variable "webhook_tolerance_seconds" {
  type        = number
  description = "standard-webhooks: how far a signed timestamp may be from now."
  default     = 300

  validation {
    condition     = var.webhook_tolerance_seconds >= 1 && var.webhook_tolerance_seconds <= 86400
    error_message = "webhook_tolerance_seconds must be between 1 and 86400."
  }
}

variable "webhook_signature_header" {
  type        = string
  description = "hmac-sha256: the header that carries the signature."
  default     = "X-Hub-Signature-256"

  validation {
    condition     = can(regex("^[A-Za-z0-9-]{1,100}$", var.webhook_signature_header))
    error_message = "webhook_signature_header must be an HTTP header name."
  }
}

variable "webhook_token_header" {
  type        = string
  description = "token: the one header that carries the token as is (GitLab's X-Gitlab-Token, a header you chose in Power Automate). Empty: Authorization: Bearer, or X-Webhook-Token."
  default     = ""

  validation {
    condition     = var.webhook_token_header == "" || can(regex("^[A-Za-z0-9-]{1,100}$", var.webhook_token_header))
    error_message = "webhook_token_header must be an HTTP header name (modules/senders refuses it with a webhook_auth other than token)."
  }
}

variable "webhook_allowed_origins" {
  type        = list(string)
  description = "The origins the webhook consents to in the CloudEvents validation handshake (Azure Event Grid's eventgrid.azure.net, a SAP Event Mesh host), or [\"*\"] for any. Empty: it consents to none."
  default     = []

  validation {
    condition     = alltrue([for o in var.webhook_allowed_origins : o == "*" || can(regex("^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?(:[0-9]{1,5})?$", lower(o)))])
    error_message = "Each of webhook_allowed_origins must be a host name (eventgrid.azure.net, a SAP Event Mesh host), or \"*\" for any."
  }
}

# --- Pub/Sub -------------------------------------------------------------------------------------

variable "webhook_link_mapping" {
  type        = string
  description = "LINK_MAPPING of the webhook function: a JSON object (or array of them) of JMESPath expressions that read a third-party sender's own payload (see docs/senders.md). Empty: requests use tulip-link's own shape. In terraform.tfvars a heredoc or a quoted JSON string (a .tfvars file takes no function calls)."
  default     = ""

  validation {
    condition     = var.webhook_link_mapping == "" || can(keys(jsondecode(var.webhook_link_mapping))) || can(concat(jsondecode(var.webhook_link_mapping), []))
    error_message = "webhook_link_mapping must be empty, or a JSON object or array (the function checks its keys and expressions when it starts)."
  }
}

variable "events_link_mapping" {
  type        = string
  description = "LINK_MAPPING of the events function, for messages published in a shape of their own. Empty: messages use tulip-link's own shape."
  default     = ""

  validation {
    condition     = var.events_link_mapping == "" || can(keys(jsondecode(var.events_link_mapping))) || can(concat(jsondecode(var.events_link_mapping), []))
    error_message = "events_link_mapping must be empty, or a JSON object or array (the function checks its keys and expressions when it starts)."
  }
}

variable "max_delivery_attempts" {
  type        = number
  description = "Deliveries of a message to the events function before Pub/Sub gives up and moves it to the dead-letter topic: the last resort for transient failures (a refusal is dead-lettered by the function at once). With the push subscription's backoff (10 s doubling to 600 s), 100 deliveries keep a message retried for at least 15.6 hours (docs/operations.md has the arithmetic)."
  default     = 100

  validation {
    condition     = var.max_delivery_attempts >= 5 && var.max_delivery_attempts <= 100
    error_message = "max_delivery_attempts must be between 5 and 100 (Pub/Sub's limits)."
  }
}

variable "tulip_not_found_retry_seconds" {
  type        = number
  description = "How long the events function retries a link to a record Tulip does not know (404: it may be created later, as events arrive out of order), counted from the message's publish time; then it dead-letters the message."
  default     = 3600

  validation {
    condition     = var.tulip_not_found_retry_seconds >= 0 && var.tulip_not_found_retry_seconds <= 604800
    error_message = "tulip_not_found_retry_seconds must be between 0 and 604800 (7 days)."
  }
}

variable "iam_propagation_seconds" {
  type        = number
  description = "How long a first apply waits for new IAM grants to apply everywhere before the builds start and before the push subscription delivers (Google: about two minutes, sometimes seven). Only at creation; later applies do not wait."
  default     = 120

  validation {
    condition     = var.iam_propagation_seconds >= 0 && var.iam_propagation_seconds <= 900
    error_message = "iam_propagation_seconds must be between 0 and 900."
  }
}

variable "metric_propagation_seconds" {
  type        = number
  description = "How long a first apply waits between creating the log-based metric and the alert that reads it (Google: up to ten minutes). Only at creation."
  default     = 180

  validation {
    condition     = var.metric_propagation_seconds >= 0 && var.metric_propagation_seconds <= 900
    error_message = "metric_propagation_seconds must be between 0 and 900."
  }
}

variable "use_eventarc_trigger" {
  type        = bool
  description = "Deliver the topic through an Eventarc trigger to link_records_pubsub instead of the push subscription. Eventarc cannot dead-letter: a message that can never succeed is logged and dropped."
  default     = false
}

# --- Sizing --------------------------------------------------------------------------------------

variable "function_timeout_seconds" {
  type        = number
  description = "Request timeout of both functions; the push subscription's ack deadline follows it."
  default     = 60

  validation {
    # The ack deadline of a push subscription is at most 600 s and must cover the timeout.
    condition     = var.function_timeout_seconds >= 10 && var.function_timeout_seconds <= 600
    error_message = "function_timeout_seconds must be between 10 and 600."
  }
}

variable "memory" {
  type        = string
  description = "Memory of an events function instance, and the least a webhook function's gets: a webhook function gets the smallest of Cloud Run's steps (256Mi, 512Mi, 1Gi, ...) that holds its max_body_bytes at max_instance_request_concurrency, unless its sender sets memory."
  default     = "256Mi"

  validation {
    condition     = can(regex("^[0-9]+(Mi|Gi|M|G)$", var.memory))
    error_message = "memory must look like 256Mi or 1Gi."
  }
}

variable "cpu" {
  type        = string
  description = "vCPUs of each instance: 1 (the default) or a whole number above it. Below 1 (0.08 to 0.999) Cloud Run serves one request at a time, so max_instance_request_concurrency must then be 1."
  default     = "1"

  validation {
    # Cloud Run: from 0.08 to 1 in steps of 0.001, whole numbers above 1, at most 8.
    condition     = can(regex("^([1-8]|0\\.[0-9]{1,3}|1\\.0+)$", var.cpu)) && tonumber(var.cpu) >= 0.08
    error_message = "cpu must be a whole number of vCPUs from 1 to 8, or a fraction from 0.08 to 0.999 (then with max_instance_request_concurrency = 1)."
  }
}

variable "max_instance_count" {
  type        = number
  description = "Most instances of each function (low volume: a few are plenty)."
  default     = 3

  validation {
    condition     = var.max_instance_count >= 1 && var.max_instance_count <= 100
    error_message = "max_instance_count must be between 1 and 100."
  }
}

variable "max_instance_request_concurrency" {
  type        = number
  description = "Requests one instance serves at once (the framework runs 4 threads per vCPU)."
  default     = 4

  validation {
    condition     = var.max_instance_request_concurrency >= 1 && var.max_instance_request_concurrency <= 80
    error_message = "max_instance_request_concurrency must be between 1 and 80."
  }
}

# --- Watching it ---------------------------------------------------------------------------------

variable "stuck_message_seconds" {
  type        = number
  description = "The messages stuck alert fires when the push subscription's oldest unacknowledged message is older than this. A message is retried for about 10 minutes before it is dead-lettered (5 deliveries, 10 s to 600 s apart), and holds its pair's later messages behind it meanwhile."
  default     = 1800

  validation {
    condition     = var.stuck_message_seconds >= 60 && var.stuck_message_seconds <= 604800
    error_message = "stuck_message_seconds must be between 60 and 604800 (the subscription keeps messages 7 days)."
  }
}

variable "runbook_url" {
  type        = string
  description = "Where your copy of docs/runbook.md is published (https://.../runbook.md): each alert links to its section there. Empty: the alerts name the file."
  default     = ""

  validation {
    condition     = var.runbook_url == "" || can(regex("^https://[^#]+$", var.runbook_url))
    error_message = "runbook_url must be empty or an https URL without a #fragment (each alert adds its section's)."
  }
}

variable "notification_channels" {
  type        = list(string)
  description = "Monitoring notification channel ids (projects/P/notificationChannels/N) for the alerts; may be empty."
  default     = []

  validation {
    condition     = alltrue([for c in var.notification_channels : can(regex("^projects/[^/]+/notificationChannels/[0-9]+$", c))])
    error_message = "Each notification channel must look like projects/P/notificationChannels/N."
  }
}
