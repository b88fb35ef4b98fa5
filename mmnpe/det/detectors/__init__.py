from .npe_two_stage_detector import NPETwoStageDetector

__all__ = ['NPETwoStageDetector']
