"""The segment dashboard: a static local HTML page (rfmlake dashboard) and its QuickSight twin
(rfmlake.dashboard.quicksight), both from the datasets in rfmlake.dashboard.datasets."""

from rfmlake.dashboard.page import DashboardData, load_dashboard_data, render_dashboard, write_dashboard

__all__ = ["DashboardData", "load_dashboard_data", "render_dashboard", "write_dashboard"]
