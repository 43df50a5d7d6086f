"""What starts runs without a person at a terminal: ``on:`` filters matched against push and
pull-request events, and cron schedules turned into ticks (pure logic; the controller and
``sparkwing scheduler`` act on the answers)."""
