"""Every callback_id, action_id and block_id the bot uses, in one place."""

from __future__ import annotations

# Modals (callback_id)
NEW_BROADCAST = "broadcast_new"
ADD_CONTACTS = "broadcast_add_contacts"
SEND_CONFIRM = "broadcast_send_confirm"
SCHEDULE = "broadcast_schedule"
SEND_TEST = "broadcast_send_test"

# New-broadcast modal: block ids (errors are attached to these) and their element action ids
B_NAME = "name"
A_NAME = "name_input"
B_CONFIG = "config"
A_CONFIG = "config_select"
B_TEMPLATE = "template"  # followed by the config id so Slack resets the choice on a change
A_TEMPLATE = "template_select"
B_AGENT = "agent"
B_PREVIEW = "preview"
B_CHANNEL = "channel"
A_CHANNEL = "channel_select"
B_RATE = "rate"
A_RATE = "rate_input"
B_BATCH_SIZE = "batch_size"
A_BATCH_SIZE = "batch_size_input"
B_BATCH_PAUSE = "batch_pause"
A_BATCH_PAUSE = "batch_pause_input"

# Add-contacts modal
B_CONTACTS = "contacts"
A_CONTACTS = "contacts_select"
B_ALL_ELIGIBLE = "all_eligible"
A_ALL_ELIGIBLE = "all_eligible_check"
ALL_ELIGIBLE_VALUE = "all"

# Schedule modal
B_WHEN = "when"
A_WHEN = "when_picker"

# Send-test modal
B_PHONE = "phone"
A_PHONE = "phone_input"
B_PARAM = "param_"  # + parameter name
A_PARAM = "param_input"

# Card buttons (value: the broadcast id)
CARD_ADD_CONTACTS = "card_add_contacts"
CARD_CSV_TEMPLATE = "card_csv_template"
CARD_SEND_TEST = "card_send_test"
CARD_SEND = "card_send"
CARD_SCHEDULE = "card_schedule"
CARD_UNSCHEDULE = "card_unschedule"
CARD_CANCEL = "card_cancel"
CARD_PAUSE = "card_pause"
CARD_RESUME = "card_resume"
CARD_REPORT = "card_report"
CARD_ACTIONS = (
    CARD_ADD_CONTACTS,
    CARD_CSV_TEMPLATE,
    CARD_SEND_TEST,
    CARD_SEND,
    CARD_SCHEDULE,
    CARD_UNSCHEDULE,
    CARD_CANCEL,
    CARD_PAUSE,
    CARD_RESUME,
    CARD_REPORT,
)
B_CARD_ACTIONS = "card_actions"

# Follow-ups: card buttons (value: the broadcast id), handled apart from CARD_ACTIONS
CARD_EDIT = "card_edit"
CARD_DUPLICATE = "card_duplicate"
CARD_RETRY = "card_retry_failed"
FOLLOW_UP_ACTIONS = (CARD_EDIT, CARD_DUPLICATE, CARD_RETRY)

# Retry confirmation modal and edit-draft modal
RETRY_CONFIRM = "broadcast_retry_confirm"
EDIT_DRAFT = "broadcast_edit_draft"
B_EDIT_NAME = "edit_name"
A_EDIT_NAME = "edit_name_input"
B_EDIT_TEMPLATE = "edit_template"
A_EDIT_TEMPLATE = "edit_template_select"
B_EDIT_DROP_UNFIT = "edit_drop_unfit"
A_EDIT_DROP_UNFIT = "edit_drop_unfit_check"
B_EDIT_PHONES = "edit_remove_phones"
A_EDIT_PHONES = "edit_remove_phones_input"
B_EDIT_IMPORT = "edit_remove_import"
A_EDIT_IMPORT = "edit_remove_import_select"
B_EDIT_ALL = "edit_remove_all"
A_EDIT_ALL = "edit_remove_all_check"
CHECKED = "yes"
