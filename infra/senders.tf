# The senders: each third-party system with its own webhook function, URL, signing secret and
# account, all feeding the one requests topic (modules/senders derives their names, memory and
# grants; the files by concern create them). With `senders` empty, the webhook_* variables make
# one sender named "webhook", whose resources keep the addresses a deployment made before
# senders has: upgrading replaces nothing (infra/README.md, "Several senders").
#
# This file holds no resource, so tests/test_senders.py evaluates it with Terraform, offline.

module "senders" {
  source = "./modules/senders"

  name_prefix = var.name_prefix
  senders     = var.senders
  single = {
    auth              = var.webhook_auth
    signature_header  = var.webhook_signature_header
    token_header      = var.webhook_token_header
    allowed_origins   = var.webhook_allowed_origins
    tolerance_seconds = var.webhook_tolerance_seconds
    link_mapping      = var.webhook_link_mapping
    delivery          = var.webhook_delivery
    tulip_dry_runs    = var.webhook_tulip_dry_runs
    public            = var.webhook_public
    invokers          = var.webhook_invokers
    max_body_bytes    = var.webhook_max_body_bytes
  }
  memory      = var.memory
  concurrency = var.max_instance_request_concurrency
}

locals {
  senders = module.senders.senders
}
